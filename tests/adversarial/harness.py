"""The hostile suite's one format: a bad input or fault, what must happen, and proof nothing was lost.

Every case is a ``Case``: what was tried against which public entry point, and what must
happen: either an exception of a given type whose message names the bad input (``raises`` +
``names``), or a handled outcome (``raises=None``: a fallback, a refusal without error) checked
by ``expect``. ``run_case`` runs it in a ``Workspace`` (fresh data folder, mirror, torch home,
cleared environment, a local fault server) and afterwards checks that nothing was changed or
left behind: every file present before is byte-identical and no temporary file (``*.part``,
``*.tmp``) remains. A case that legitimately writes (a fallback that caches) lists the paths it
may create in ``may_create``.

Each test module holds a list ``CASES`` and one parametrized test calling ``run_case``. With
``NBHELPERS_RELIABILITY_RECORD`` naming a folder, ``run_case`` also writes what it observed there
(one JSON line per case, one file per process): the book's Reliability page runs the suite that
way and tabulates the records, so its table is generated from the suite, never written by hand.
"""

from __future__ import annotations

import fnmatch
import hashlib
import http.server
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CATEGORIES = (
    "files",
    "environment",
    "network",
    "checkpoints",
    "arguments",
    "cli",
    "book",
    # faults from real disks, networks, signals and other processes (issue 20)
    "full disk",
    "throttled servers",
    "signals",
    "concurrent writers",
)
TEMPORARY_PATTERNS = ("*.part", "*.tmp", ".*.part", ".*.tmp")
# Variables the workspace clears so that the caller's environment cannot leak into a case.
CLEARED_ENV = (
    "NBHELPERS_DATA",
    "NBHELPERS_DATA_MIRROR",
    "NBHELPERS_OFFLINE",
    "NBHELPERS_DEVICE",
    "NBHELPERS_PROFILE",
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "MASTER_ADDR",
    "MASTER_PORT",
    "TORCH_HOME",
    "MPLBACKEND",
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
)


# ---- a local server that misbehaves on request -------------------------------------------------


@dataclass
class Route:
    """What the fault server answers on one path.

    status: the HTTP status; body: the bytes sent; headers: extra headers; announce: a
    Content-Length larger than the body (a truncated transfer); delay: seconds to sleep before
    answering (a slow server); reset: close the connection without an answer; trickle: seconds
    between bytes (a throttled server sending one byte at a time: the whole answer, status
    line and headers included, or only the body with ``trickle_body_only``).
    """

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    announce: int | None = None
    delay: float = 0.0
    reset: bool = False
    trickle: float = 0.0
    trickle_body_only: bool = False


class FaultServer:
    """An HTTP server on 127.0.0.1 whose answers are set per path; counts requests per path."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: dict[str, int] = {}
        self.closed = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                server.requests[self.path] = server.requests.get(self.path, 0) + 1
                route = server.routes.get(
                    self.path, Route(status=404, body=b"no such path")
                )
                if route.delay:
                    time.sleep(route.delay)
                if route.reset:
                    self.close_connection = True
                    self.connection.close()
                    return
                try:
                    if route.trickle:
                        self._trickle(route)
                        return
                    self.send_response(route.status)
                    for key, value in route.headers.items():
                        self.send_header(key, value)
                    self.send_header(
                        "Content-Length", str(route.announce or len(route.body))
                    )
                    self.end_headers()
                    self.wfile.write(route.body)
                    if route.announce:
                        self.close_connection = True
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _trickle(self, route: Route) -> None:
                """Send the answer one byte every ``route.trickle`` seconds, until the client goes."""
                head = (
                    f"HTTP/1.1 {route.status} OK\r\n"
                    + "".join(f"{k}: {v}\r\n" for k, v in route.headers.items())
                    + f"Content-Length: {route.announce or len(route.body)}\r\n\r\n"
                ).encode()
                self.close_connection = True
                if route.trickle_body_only:
                    self.wfile.write(head)
                    self.wfile.flush()
                    head = b""
                for byte in head + route.body:
                    time.sleep(route.trickle)
                    if server.closed.is_set():
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            daemon=True,
        ).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.closed.set()
        self._httpd.shutdown()
        self._httpd.server_close()


def within(seconds: float, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``call(*args, **kwargs)``; AssertionError if it took longer than ``seconds`` (a hang).

    For throttled servers: what must happen must also happen in time.
    """
    started = time.monotonic()
    try:
        return call(*args, **kwargs)
    finally:
        took = time.monotonic() - started
        if took > seconds:
            raise AssertionError(f"took {took:.1f} s, more than {seconds:g} s")


# ---- the workspace ---------------------------------------------------------------------------


@dataclass
class Workspace:
    """Fresh folders and a cleared environment for one case.

    Attributes:
        root: the case's temporary folder; data, mirror and torch_home live under it.
        data: ``NBHELPERS_DATA`` (exists, empty); mirror: a folder for ``NBHELPERS_DATA_MIRROR``
            (exists, empty, not set: a case sets the variable when it needs a mirror).
        torch_home: ``TORCH_HOME`` (torchvision's weights cache is ``torch_home/hub/checkpoints``).
        env: pytest's monkeypatch, to set variables for the case.
        server: a ``FaultServer`` whose routes the case sets.
    """

    root: Path
    data: Path
    mirror: Path
    torch_home: Path
    env: pytest.MonkeyPatch
    server: FaultServer
    mounts: list[Path] = field(default_factory=list)

    def small_disk(self, relative: str, kib: int) -> Path:
        """A real tmpfs of ``kib`` KiB mounted at ``root/relative`` (created) for this case.

        Unmounted when the case ends. Skips the case, with the reason, where mounting is not
        allowed (not root, no CAP_SYS_ADMIN, no ``mount`` program, not Linux).
        """
        folder = self.root / relative
        folder.mkdir(parents=True, exist_ok=True)
        if shutil.which("mount") is None:
            pytest.skip("a full-disk case needs the mount program to mount a tmpfs")
        done = subprocess.run(
            [
                "mount",
                "-t",
                "tmpfs",
                "-o",
                f"size={kib}k,mode=0777",
                "tmpfs",
                str(folder),
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            pytest.skip(
                "a full-disk case mounts a small tmpfs, which needs root (CAP_SYS_ADMIN): "
                f"mount said {done.stderr.strip() or done.returncode}"
            )
        self.mounts.append(folder)
        return folder

    def snapshot(self) -> dict[str, str]:
        """Relative path -> sha256 (or "<dir>") of everything under ``root``."""
        state = {}
        for path in sorted(self.root.rglob("*")):
            key = path.relative_to(self.root).as_posix()
            if path.is_symlink() and not path.exists():
                state[key] = "<dangling link>"
            elif path.is_dir():
                state[key] = "<dir>"
            elif not path.is_file():  # a FIFO would block a read
                state[key] = f"<special {stat.S_IFMT(path.stat().st_mode):o}>"
            else:
                try:
                    state[key] = hashlib.sha256(path.read_bytes()).hexdigest()
                except OSError:
                    state[key] = "<unreadable>"
        return state


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    for name in CLEARED_ENV:
        monkeypatch.delenv(name, raising=False)
    data, mirror, torch_home = (
        tmp_path / "data",
        tmp_path / "mirror",
        tmp_path / "torch",
    )
    for folder in (data, mirror, torch_home):
        folder.mkdir()
    monkeypatch.setenv("NBHELPERS_DATA", str(data))
    monkeypatch.setenv("NBHELPERS_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    server = FaultServer()
    workspace = Workspace(tmp_path, data, mirror, torch_home, monkeypatch, server)
    try:
        yield workspace
    finally:
        server.close()
        for folder in reversed(workspace.mounts):
            subprocess.run(["umount", "-l", str(folder)], check=False)
        for path in tmp_path.rglob(
            "*"
        ):  # let pytest clean up what a case made read-only
            if not path.is_symlink():
                os.chmod(path, 0o700 if path.is_dir() else 0o600)


# ---- cases -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One hostile input or fault and what must happen.

    Attributes:
        id: a short unique slug (the pytest id).
        category: one of ``CATEGORIES``.
        target: the public entry point, e.g. "load_mnist" or "Trainer.load_checkpoint".
        tried: what was done, for people ("label byte 200 in train-labels-idx1-ubyte").
        outcome: what must happen, for people ("ValueError naming the file and the label").
        act: does it; receives the Workspace; its return value goes to ``expect``.
        setup: prepares the workspace before the snapshot is taken (files to corrupt, ...).
        raises: the exception type required, or None for a handled outcome.
        names: a regular expression the message must match (it names the bad input); required
            when ``raises`` is set.
        expect: checks the return value of ``act`` (and the workspace) for handled outcomes.
        may_create: glob patterns (relative to the workspace root) of paths the case may create.
        may_change: glob patterns of existing files the case may change.
    """

    id: str
    category: str
    target: str
    tried: str
    outcome: str
    act: Callable[[Workspace], Any]
    setup: Callable[[Workspace], Any] | None = None
    raises: type[BaseException] | tuple[type[BaseException], ...] | None = None
    names: str | None = None
    expect: Callable[[Any, Workspace], None] | None = None
    may_create: tuple[str, ...] = ()
    may_change: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(
                f"case {self.id}: category {self.category!r} is not one of {CATEGORIES}"
            )
        if self.raises is not None and not self.names:
            raise ValueError(
                f"case {self.id}: an expected error needs `names`, the pattern naming the bad input"
            )
        if self.raises is None and self.expect is None:
            raise ValueError(f"case {self.id}: a handled outcome needs `expect`")


@dataclass(frozen=True)
class Observation:
    """What actually happened in one run of a case (for the Reliability page)."""

    case: Case
    error_type: str | None
    message: str
    passed: bool
    problem: str


RECORD_ENV = "NBHELPERS_RELIABILITY_RECORD"


def run_case(case: Case, ws: Workspace) -> None:
    """Run ``case`` in ``ws``; fail the test when the outcome or the workspace is not as required."""
    observation = observe(case, ws)
    folder = os.environ.get(RECORD_ENV)
    if folder:
        record(observation, ws, Path(folder))
    if not observation.passed:
        pytest.fail(
            f"{case.id}: {observation.problem}\n  error: {observation.error_type}: {observation.message}"
        )


def observe(case: Case, ws: Workspace) -> Observation:
    """Run ``case`` in ``ws`` and report what happened, without raising."""
    if case.setup is not None:
        case.setup(ws)
    before = ws.snapshot()
    error: BaseException | None = None
    result: Any = None
    try:
        result = case.act(ws)
    except (Exception, KeyboardInterrupt) as caught:  # noqa: BLE001 (the point is to observe any failure)
        error = caught
    error_type = type(error).__name__ if error is not None else None
    message = " ".join(str(error).split()) if error is not None else ""
    problem = _outcome_problem(case, error, result, ws)
    if not problem:
        problem = _workspace_problem(case, before, ws.snapshot())
    return Observation(case, error_type, message, passed=not problem, problem=problem)


def record(observation: Observation, ws: Workspace, folder: Path) -> None:
    """Append one JSON line for ``observation`` to ``folder/<pid>.jsonl`` (workspace paths shortened)."""
    case = observation.case
    message = observation.message
    for root in {str(ws.root.resolve()), str(ws.root)}:
        message = message.replace(root, "<workspace>")
    # a lock's holder names its command: the interpreter and the environment are paths of this
    # machine, not of the case
    message = message.replace(sys.executable, "python").replace(sys.prefix, "<env>")
    message = _one_line(message)
    line = {
        "id": case.id,
        "category": case.category,
        "target": case.target,
        "tried": case.tried,
        "outcome": case.outcome,
        "error": observation.error_type,
        "message": message,
        "passed": observation.passed,
    }
    with open(folder / f"{os.getpid()}.jsonl", "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


def _outcome_problem(
    case: Case, error: BaseException | None, result: Any, ws: Workspace
) -> str:
    if case.raises is not None:
        if error is None:
            return f"expected {_names(case.raises)}, but nothing was raised (returned {result!r:.80})"
        if not isinstance(error, case.raises):
            return f"expected {_names(case.raises)}, got {type(error).__name__}"
        assert case.names is not None
        if not re.search(case.names, str(error)):
            return f"the message does not name the bad input (pattern {case.names!r})"
        return ""
    if error is not None:
        return f"expected a handled outcome, got {type(error).__name__}"
    assert case.expect is not None
    try:
        case.expect(result, ws)
    except AssertionError as failed:
        return f"handled outcome not as expected: {failed}"
    return ""


def _workspace_problem(
    case: Case, before: dict[str, str], after: dict[str, str]
) -> str:
    for key, digest in before.items():
        if after.get(key) != digest and not _matches(key, case.may_change):
            return f"{key} was changed or removed"
    for key in after.keys() - before.keys():
        name = key.rsplit("/", 1)[-1]
        if any(fnmatch.fnmatch(name, pattern) for pattern in TEMPORARY_PATTERNS):
            return f"a temporary file was left behind: {key}"
        if not _matches(key, case.may_create):
            return f"{key} was created"
    return ""


def _matches(key: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(key, pattern) for pattern in patterns)


def _names(types: type[BaseException] | tuple[type[BaseException], ...]) -> str:
    if isinstance(types, tuple):
        return " or ".join(t.__name__ for t in types)
    return types.__name__


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
