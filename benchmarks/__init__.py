"""Benchmarks: each script prints ratios against a reference measured in the same run.

Run them from the repository root as modules (``python -m benchmarks.conv_speed``), or all of
them with ``make bench``. ``--json`` prints the rows of ``measure()`` as one JSON line instead of
a table (the book's Performance page runs the scripts that way). Timings never live in unit tests.
"""
