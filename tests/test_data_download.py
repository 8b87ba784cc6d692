"""storage.download() as the data loaders use it: a local server on 127.0.0.1 plays the internet."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
import time
from pathlib import Path

import pytest

from nbhelpers.storage import DownloadError, download

GOOD = b"verified content\n" * 1000
GOOD_SHA256 = hashlib.sha256(GOOD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """GET /good, /missing (404), /flaky (500 on the first request, then 200), /broken (500),
    /truncated (announces more bytes than it sends), /slow (sleeps past the client's timeout)."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        server = self.server
        server.requests[self.path] = server.requests.get(self.path, 0) + 1
        count = server.requests[self.path]
        if self.path == "/good" or (self.path == "/flaky" and count > 1):
            self._send(200, GOOD)
        elif self.path == "/missing":
            self._send(404, b"not here")
        elif self.path in ("/flaky", "/broken"):
            self._send(500, b"oops")
        elif self.path == "/truncated":
            self.send_response(200)
            self.send_header("Content-Length", str(len(GOOD)))
            self.end_headers()
            self.wfile.write(GOOD[:100])
            self.close_connection = True
        elif self.path == "/slow":
            time.sleep(1.0)
            self._send(200, GOOD)
        else:
            self._send(404, b"unknown path")

    def _send(self, status: int, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the /slow case)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def server(monkeypatch):
    for name in (
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "NBHELPERS_OFFLINE",
    ):
        monkeypatch.delenv(name, raising=False)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.requests = {}
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def _url(httpd, path: str) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}{path}"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_good_file_is_written_and_verified(server, tmp_path):
    dest = tmp_path / "sub" / "file.bin"
    result = download(_url(server, "/good"), dest, sha256=GOOD_SHA256, progress=False)
    assert result == dest.resolve()
    assert dest.read_bytes() == GOOD
    # no temporary file left
    assert sorted(p.name for p in dest.parent.iterdir()) == ["file.bin"]


def test_http_404_is_reported_not_retried_and_leaves_nothing(server, tmp_path):
    dest = tmp_path / "file.bin"
    with pytest.raises(DownloadError, match=r"HTTP 404 .*?/missing"):
        download(
            _url(server, "/missing"), dest, retries=3, backoff=0.01, progress=False
        )
    assert server.requests["/missing"] == 1
    assert list(tmp_path.iterdir()) == []


def test_server_error_is_retried_until_success(server, tmp_path):
    dest = tmp_path / "file.bin"
    download(
        _url(server, "/flaky"),
        dest,
        sha256=GOOD_SHA256,
        retries=2,
        backoff=0.01,
        progress=False,
    )
    assert server.requests["/flaky"] == 2
    assert dest.read_bytes() == GOOD


def test_persistent_server_error_gives_up_after_the_retries(server, tmp_path):
    with pytest.raises(DownloadError, match=r"HTTP 500 .*gave up after 3 attempts"):
        download(
            _url(server, "/broken"),
            tmp_path / "f",
            retries=2,
            backoff=0.01,
            progress=False,
        )
    assert server.requests["/broken"] == 3
    assert list(tmp_path.iterdir()) == []


def test_checksum_mismatch_names_both_digests_and_leaves_nothing(server, tmp_path):
    wrong = "0" * 64
    with pytest.raises(
        DownloadError, match=f"sha256 mismatch .*expected {wrong}, got {GOOD_SHA256}"
    ):
        download(
            _url(server, "/good"), tmp_path / "file.bin", sha256=wrong, progress=False
        )
    assert server.requests["/good"] == 1  # a wrong checksum is not a transient error
    assert list(tmp_path.iterdir()) == []


def test_failed_download_keeps_an_existing_destination(server, tmp_path):
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"old")
    with pytest.raises(DownloadError):
        download(_url(server, "/good"), dest, sha256="1" * 64, progress=False)
    assert dest.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.bin"]


def test_truncated_body_is_retried_then_reported(server, tmp_path):
    with pytest.raises(DownloadError, match="truncated|connection dropped"):
        download(
            _url(server, "/truncated"),
            tmp_path / "f",
            retries=1,
            backoff=0.01,
            progress=False,
        )
    assert server.requests["/truncated"] == 2
    assert list(tmp_path.iterdir()) == []


def test_timeout_is_retried_then_reported(server, tmp_path):
    with pytest.raises(DownloadError, match="timed out"):
        download(
            _url(server, "/slow"),
            tmp_path / "f",
            retries=1,
            timeout=0.2,
            backoff=0.01,
            progress=False,
        )
    assert server.requests["/slow"] == 2
    assert list(tmp_path.iterdir()) == []


def test_no_network_fails_fast_without_retrying(tmp_path, monkeypatch):
    monkeypatch.delenv("NBHELPERS_OFFLINE", raising=False)
    start = time.perf_counter()
    with pytest.raises(DownloadError, match="network unreachable"):
        download(
            f"http://127.0.0.1:{_closed_port()}/file",
            tmp_path / "f",
            retries=3,
            backoff=1.0,
            progress=False,
        )
    assert time.perf_counter() - start < 1.0  # a retry would have slept 1 s
    assert list(tmp_path.iterdir()) == []


def test_offline_switch_refuses_before_any_request(server, tmp_path, monkeypatch):
    monkeypatch.setenv("NBHELPERS_OFFLINE", "1")
    with pytest.raises(DownloadError, match="offline"):
        download(_url(server, "/good"), tmp_path / "f", progress=False)
    assert server.requests == {}
    assert list(tmp_path.iterdir()) == []


def test_check_callback_can_reject_the_content(server, tmp_path):
    def must_be_csv(path: Path) -> None:
        if not path.read_bytes().startswith(b"name,"):
            raise ValueError("not a names CSV")

    with pytest.raises(DownloadError, match="unexpected content .*not a names CSV"):
        download(
            _url(server, "/good"), tmp_path / "f.csv", check=must_be_csv, progress=False
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "url, sha256, retries",
    [
        ("ftp://example.org/f", None, 3),
        ("file.bin", None, 3),
        ("http://x/f", "abc", 3),
        ("http://x/f", None, -1),
    ],
)
def test_bad_arguments_raise_value_error(url, sha256, retries, tmp_path):
    with pytest.raises(ValueError):
        download(url, tmp_path / "f", sha256=sha256, retries=retries)
