"""Helpers shared by the data tests: the read-only mirror of real data, a local file server."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest


def shared_mirror() -> Path | None:
    """NBHELPERS_DATA_MIRROR, else ../shared/data beside the repository, if it exists."""
    value = os.environ.get("NBHELPERS_DATA_MIRROR")
    path = Path(value) if value else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return path if path.is_dir() else None


MIRROR = shared_mirror()


def needs_mirror(relative: str) -> pytest.MarkDecorator:
    """Skip (with the reason) unless the mirror holds ``relative``."""
    return pytest.mark.skipif(
        MIRROR is None or not (MIRROR / relative).is_dir(),
        reason=f"no data mirror with {relative}/ (set NBHELPERS_DATA_MIRROR)",
    )


@contextlib.contextmanager
def serve_directory(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on 127.0.0.1 (a free port) in a thread; yields the base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
