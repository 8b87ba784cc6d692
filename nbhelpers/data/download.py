"""Checked downloads: status checked, streamed to a temporary file, sha256 verified, then renamed.

Only the standard library's urllib is used. Nothing is left behind on failure: the temporary file
beside ``dest`` is removed and ``dest`` is only ever created by an atomic rename of a complete,
verified file.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import os
import re
import socket
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from tqdm.auto import tqdm

from nbhelpers.data.paths import offline

CHUNK_BYTES = 1 << 16
USER_AGENT = "nbhelpers/0.1 (python urllib)"
_SHA256 = re.compile(r"[0-9a-f]{64}")
# errno values that mean "there is no route to the server": retrying will not help.
_UNREACHABLE = {errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN}


class DownloadError(OSError):
    """A download failed; the message says what failed (HTTP status, checksum, network)."""


class _TransientError(Exception):
    """A failure worth retrying: 5xx or 429, a reset connection, a timeout, a truncated body."""


def download(
    url: str,
    dest: str | Path,
    sha256: str | None = None,
    retries: int = 3,
    timeout: float = 30.0,
    backoff: float = 0.5,
    check: Callable[[Path], None] | None = None,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest`` and return ``dest`` (absolute).

    The body is streamed to a temporary file in ``dest``'s folder (with a tqdm progress bar),
    its sha256 compared with ``sha256`` when given, ``check(temporary_path)`` called when given
    (it raises ValueError to reject the content), and only then renamed onto ``dest``
    (``os.replace``, atomic on one file system).

    Transient failures (HTTP 5xx or 429, connection reset, timeout, truncated body) are retried
    up to ``retries`` times, waiting ``backoff * 2**attempt`` seconds in between. Other failures
    (HTTP 4xx such as 404, checksum mismatch, rejected content, no network) are not retried.
    With ``NBHELPERS_OFFLINE=1`` nothing is attempted.

    Raises:
        ValueError: ``url`` is not http(s), ``sha256`` is not 64 hex digits, or ``retries < 0``.
        DownloadError: the download failed; the message names the url and the reason
            ("HTTP 404 Not Found", "sha256 mismatch: expected ..., got ...",
            "network unreachable", "offline", ...).
    """
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"download needs an http(s) url, got {url!r}")
    if sha256 is not None and not _SHA256.fullmatch(sha256.lower()):
        raise ValueError(f"sha256 must be 64 hexadecimal digits, got {sha256!r}")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    dest = Path(dest).expanduser().resolve()
    if offline():
        raise DownloadError(f"offline (NBHELPERS_OFFLINE is set): not downloading {url}")
    dest.parent.mkdir(parents=True, exist_ok=True)

    for attempt in range(retries + 1):
        try:
            return _download_once(url, dest, sha256, timeout, check, progress)
        except _TransientError as error:
            if attempt == retries:
                raise DownloadError(f"{error} (gave up after {retries + 1} attempts)") from None
            time.sleep(backoff * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _download_once(
    url: str,
    dest: Path,
    sha256: str | None,
    timeout: float,
    check: Callable[[Path], None] | None,
    progress: bool,
) -> Path:
    handle, temp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            digest = _stream(url, out, timeout, progress, label=dest.name)
        if sha256 is not None and digest != sha256.lower():
            raise DownloadError(f"sha256 mismatch for {url}: expected {sha256.lower()}, got {digest}")
        if check is not None:
            try:
                check(temp)
            except ValueError as error:
                raise DownloadError(f"unexpected content from {url}: {error}") from None
        os.replace(temp, dest)
        return dest
    finally:
        temp.unlink(missing_ok=True)


def _stream(url: str, out: BinaryIO, timeout: float, progress: bool, label: str) -> str:
    """Write the body of ``url`` to ``out``; return its sha256 hex digest."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if response.status != 200:
                raise DownloadError(f"HTTP {response.status} {response.reason} for {url}")
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            received = 0
            bar = tqdm(total=expected, unit="B", unit_scale=True, desc=label, disable=not progress, leave=False)
            with bar:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            if expected is not None and received != expected:
                raise _TransientError(f"truncated body from {url}: got {received} of {expected} bytes")
    except urllib.error.HTTPError as error:
        message = f"HTTP {error.code} {error.reason} for {url}"
        if error.code >= 500 or error.code == 429:
            raise _TransientError(message) from None
        raise DownloadError(message) from None
    except urllib.error.URLError as error:
        raise _classify_network_error(url, error.reason) from None
    except (http.client.IncompleteRead, http.client.RemoteDisconnected) as error:
        raise _TransientError(f"connection dropped while reading {url}: {error!r}") from None
    except OSError as error:
        if isinstance(error, DownloadError):
            raise
        raise _classify_network_error(url, error) from None
    return digest.hexdigest()


def _classify_network_error(url: str, reason: object) -> Exception:
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return _TransientError(f"timed out connecting to or reading {url}")
    if isinstance(reason, ConnectionResetError):
        return _TransientError(f"connection reset by the server of {url}")
    if isinstance(reason, socket.gaierror):
        return DownloadError(f"network unreachable: cannot resolve the host of {url} ({reason})")
    if isinstance(reason, OSError) and reason.errno in _UNREACHABLE:
        return DownloadError(f"network unreachable: cannot connect to {url} ({reason})")
    return DownloadError(f"cannot download {url}: {reason}")
