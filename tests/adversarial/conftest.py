"""Fixtures of the hostile suite: see harness.py."""

from harness import workspace  # noqa: F401 (a fixture, used by name)
