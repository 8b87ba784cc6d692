"""A chapter's preamble: the one place where a page's settings are read and applied.

Every chapter's first cell calls ``device = start_chapter(source)``: the CPU threads of
``NBHELPERS_THREADS``, the seeds, the notebook's plotting setup, progress bars off when
``TQDM_DISABLE`` says so (a book build), and one banner line naming the device, the profile and
the data, so that a reader sees where the numbers below come from.
"""

from __future__ import annotations

import torch

from nbhelpers import plotting
from nbhelpers.checks import env_flag
from nbhelpers.device import cpu_threads, get_device, run_banner, seed_everything
from nbhelpers.train.progress import show_bars


def start_chapter(data_source: object | None = None, seed: int = 0) -> torch.device:
    """Threads, seeds, inline figures, bars and the banner line; returns ``get_device()``.

    Args:
        data_source: where the chapter's data came from (e.g. ``data.source``), for the banner.
        seed: passed to ``seed_everything``.
    """
    device = get_device()
    threads = cpu_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    seed_everything(seed)
    show_bars(not env_flag("TQDM_DISABLE"))
    plotting.setup_notebook()
    print(run_banner(data_source, device), flush=True)
    return device
