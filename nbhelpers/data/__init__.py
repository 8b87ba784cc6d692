"""Data for the chapters, found in this order: data folder, mirror, download, embedded default."""

from nbhelpers.data.images import demo_image
from nbhelpers.data.paths import data_dir, find_data, mirror_dir

__all__ = ["data_dir", "demo_image", "find_data", "mirror_dir"]
