"""Hostile command lines and environments against ``python -m nbhelpers.examples.mnist``.

Every bad flag must stop the program before any data is loaded or any step is taken (exit status
2 and a message naming the flag), and a failure once the run has started must end with status 1
and one line naming what went wrong, leaving the checkpoint that was there as it was.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
from typing import Any

import pytest
import torch
from harness import Case, Workspace, run_case
from processes import Ended, cli, finish, parts, send, stop, wait_until

from nbhelpers.examples import mnist as example
from nbhelpers.train.checkpoint import read_meta

TINY = [
    "--epochs",
    "1",
    "--train-size",
    "64",
    "--valid-size",
    "32",
    "--device",
    "cpu",
    "--quiet",
]


class CommandFailed(Exception):
    """A command-line run ended with a non-zero status; the message holds it and stderr's last line."""


def _cli(ws: Workspace, *arguments: str) -> str:
    """Run the program in-process; CommandFailed with its status and last error line if it fails."""
    err, out = io.StringIO(), io.StringIO()
    threads = torch.get_num_threads()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                status = example.main(list(arguments))
            except SystemExit as stop:
                status = stop.code
    finally:
        torch.set_num_threads(threads)
    if status != 0:
        lines = err.getvalue().strip().splitlines() or ["(no message)"]
        raise CommandFailed(f"exit {status}: {lines[-1]}")
    return out.getvalue()


def _write(ws: Workspace, relative: str, content: bytes = b"not a checkpoint") -> None:
    path = ws.root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stale_launch(
    ws: Workspace, world: str = "2", rank: str = "0", port: int | None = None
) -> None:
    ws.env.setenv("WORLD_SIZE", world)
    ws.env.setenv("RANK", rank)
    ws.env.setenv("LOCAL_RANK", rank)
    ws.env.setenv("MASTER_ADDR", "127.0.0.1")
    ws.env.setenv("MASTER_PORT", str(port or _free_port()))


def _other_recipe_checkpoint(ws: Workspace) -> None:
    _cli(ws, *TINY, "--max-lr", "0.001", "--checkpoint", str(ws.root / "ck.pt"))


def _finished(result: str, ws: Workspace) -> None:
    assert "valid_accuracy=" in result, result


# ---- real runs in subprocesses ------------------------------------------------------------------

# long enough to be signalled or joined by a second run; a checkpoint after every epoch
LONG = [
    "--epochs",
    "100000",
    "--train-size",
    "256",
    "--valid-size",
    "64",
    "--device",
    "cpu",
    "--quiet",
]


def _first_checkpoint(ws: Workspace, child) -> None:
    """Wait until the run has written its first checkpoint (one epoch done)."""
    wait_until(
        lambda: (ws.data / "run.pt").is_file(), "the first checkpoint", child=child
    )


def _interrupt_run(ws: Workspace, signum: int) -> Ended:
    child = cli(ws, [*LONG, "--checkpoint", str(ws.data / "run.pt")])
    try:
        _first_checkpoint(ws, child)
        return send(child, signum)
    finally:
        stop(child)


def _stopped_with_checkpoint(signum: int):
    def check(result: Any, ws: Workspace) -> None:
        assert result.status == 128 + signum, (result.status, result.stderr[-800:])
        name = signal.Signals(signum).name
        assert result.error_lines == [
            f"{example.PROG}: interrupted ({name}); {ws.data / 'run.pt'} holds the last "
            "completed epoch; run the same command to resume"
        ], result.stderr[-800:]
        meta = read_meta(ws.data / "run.pt")  # complete and a Trainer checkpoint
        assert meta["recipe"] == "MnistRecipe", meta
        assert parts(ws.data) == [] and not (ws.data / "run.pt.lock").exists()

    return check


def _two_runs(ws: Workspace) -> tuple[Ended, int]:
    """Two runs started together with the same --checkpoint: one must refuse, naming the other.

    Returns how the refused run ended and the pid of the one that runs (then stopped).
    """
    arguments = [*LONG, "--checkpoint", str(ws.data / "run.pt")]
    runs = [cli(ws, arguments), cli(ws, arguments)]
    try:
        wait_until(
            lambda: any(run.poll() is not None for run in runs), "one run to end"
        )
        refused, running = runs if runs[0].poll() is not None else runs[::-1]
        assert running.poll() is None, "both runs ended"
        return finish(refused), running.pid
    finally:
        for run in runs:
            if run.poll() is None:
                send(run, signal.SIGINT)


def _second_refused(result: Any, ws: Workspace) -> None:
    second, first_pid = result
    assert second.status == 1, (second.status, second.stderr[-800:])
    assert len(second.error_lines) == 1, second.stderr[-800:]
    line = second.error_lines[0]
    assert f"the checkpoint {ws.data / 'run.pt'} is in use by another run" in line, line
    assert f"(pid {first_pid} on " in line and "nbhelpers.examples.mnist" in line, line
    assert "valid_accuracy" not in second.stdout, "the second run trained"
    if (ws.data / "run.pt").exists():
        read_meta(ws.data / "run.pt")  # the running one's checkpoint, whole


def _on_small_disk(ws: Workspace) -> Ended:
    disk = ws.small_disk("disk", 1024)  # the checkpoint takes 2.8 MB
    return finish(cli(ws, [*TINY, "--checkpoint", str(disk / "run.pt")]))


def _one_line_no_space(result: Any, ws: Workspace) -> None:
    assert result.status == 1, (result.status, result.stderr[-800:])
    assert result.error_lines == [
        f"{example.PROG}: error: [Errno 28] could not write {ws.root / 'disk' / 'run.pt'}: "
        "No space left on device"
    ], result.stderr[-800:]
    assert list((ws.root / "disk").iterdir()) == [], "litter on the full disk"


def bad_flag(
    slug: str, arguments: list[str], names: str, tried: str, setup=None
) -> Case:
    """A flag the program must refuse before any work: exit status 2 naming it."""
    return Case(
        f"cli-{slug}",
        "cli",
        "python -m nbhelpers.examples.mnist",
        tried,
        "exit status 2 before any data is loaded; the message names the flag",
        act=lambda ws: _cli(ws, *arguments),
        setup=setup,
        raises=CommandFailed,
        names=f"exit 2: .*{names}",
    )


CASES = [
    bad_flag(
        "device-unknown",
        [*TINY, "--device", "tpu"],
        "--device tpu is not a device name",
        "--device tpu",
    ),
    bad_flag(
        "device-missing-gpu",
        [*TINY, "--device", "cuda:7"],
        "--device cuda:7",
        "--device cuda:7 on a machine without it",
    ),
    bad_flag(
        "precision-fp16-on-cpu",
        [*TINY, "--precision", "16"],
        "precision='16' needs a CUDA device",
        "--precision 16 on the CPU",
    ),
    bad_flag(
        "precision-unknown",
        [*TINY, "--precision", "8"],
        "invalid choice: '8'",
        "--precision 8",
    ),
    bad_flag(
        "epochs-zero",
        [*TINY, "--epochs", "0"],
        "epochs must be an int >= 1, got 0",
        "--epochs 0",
    ),
    bad_flag(
        "epochs-not-a-number",
        [*TINY, "--epochs", "three"],
        "--epochs: invalid int value: 'three'",
        "--epochs three",
    ),
    bad_flag(
        "batch-size-negative",
        [*TINY, "--batch-size", "-32"],
        "batch_size must be an int >= 1, got -32",
        "--batch-size -32",
    ),
    bad_flag(
        "train-size-zero",
        [*TINY, "--train-size", "0"],
        "train_size must be an int >= 1, got 0",
        "--train-size 0",
    ),
    bad_flag(
        "valid-size-float",
        [*TINY, "--valid-size", "0.5"],
        "--valid-size: invalid int value: '0.5'",
        "--valid-size 0.5",
    ),
    bad_flag(
        "max-lr-nan",
        [*TINY, "--max-lr", "nan"],
        "max_lr must be a finite number > 0, got nan",
        "--max-lr nan",
    ),
    bad_flag(
        "max-lr-inf",
        [*TINY, "--max-lr", "inf"],
        "max_lr must be a finite number > 0, got inf",
        "--max-lr inf",
    ),
    bad_flag(
        "max-lr-negative",
        [*TINY, "--max-lr", "-0.01"],
        "max_lr must be a finite number > 0, got -0.01",
        "--max-lr -0.01",
    ),
    bad_flag(
        "seed-negative",
        [*TINY, "--seed", "-1"],
        "seed must be an int >= 0, got -1",
        "--seed -1",
    ),
    bad_flag(
        "threads-zero",
        [*TINY, "--threads", "0"],
        r"--threads must be >= 1 and at most \d+ .*, got 0",
        "--threads 0",
    ),
    bad_flag(
        "threads-above-machine",
        [*TINY, "--threads", "99999"],
        r"--threads must be >= 1 and at most \d+ \(the CPUs this process may use\), got 99999",
        "--threads 99999 (a MemoryError traceback before)",
    ),
    bad_flag(
        "stop-after-zero",
        [*TINY, "--stop-after", "0"],
        "--stop-after must be >= 1, got 0",
        "--stop-after 0",
    ),
    bad_flag(
        "join-timeout-zero",
        [*TINY, "--join-timeout", "0"],
        "--join-timeout must be a finite number",
        "--join-timeout 0",
    ),
    bad_flag(
        "cuda-graph-on-cpu",
        [*TINY, "--cuda-graph"],
        "cuda_graph=True needs a CUDA device",
        "--cuda-graph on the CPU",
    ),
    bad_flag(
        "unknown-flag",
        [*TINY, "--learning-rate", "0.1"],
        "unrecognized arguments: --learning-rate 0.1",
        "--learning-rate 0.1 (no such flag)",
    ),
    bad_flag(
        "checkpoint-missing-folder",
        [*TINY, "--checkpoint", "/nonexistent/dir/ck.pt"],
        "--checkpoint /nonexistent/dir/ck.pt: checkpoint folder does not exist",
        "--checkpoint /nonexistent/dir/ck.pt (the model would be lost after training)",
    ),
    Case(
        "cli-checkpoint-is-a-folder",
        "cli",
        "python -m nbhelpers.examples.mnist",
        "--checkpoint naming a folder",
        "exit status 2 before any data is loaded; the message names the flag",
        act=lambda ws: _cli(ws, *TINY, "--checkpoint", str(ws.data)),
        raises=CommandFailed,
        names="exit 2: .*--checkpoint .*data is a folder",
    ),
    Case(
        "cli-checkpoint-read-only",
        "cli",
        "python -m nbhelpers.examples.mnist",
        "--checkpoint naming a read-only (0444) file",
        "exit status 2 before any work; the file unchanged",
        setup=lambda ws: (_write(ws, "ck.pt"), os.chmod(ws.root / "ck.pt", 0o444)),
        act=lambda ws: _cli(ws, *TINY, "--checkpoint", str(ws.root / "ck.pt")),
        raises=CommandFailed,
        names="exit 2: .*ck.pt is read-only",
    ),
    Case(
        "cli-checkpoint-junk-file",
        "cli",
        "python -m nbhelpers.examples.mnist",
        "--checkpoint naming an existing file that is not a checkpoint",
        "exit status 1 naming the file, before the first step; the file unchanged",
        setup=lambda ws: _write(ws, "ck.pt"),
        act=lambda ws: _cli(ws, *TINY, "--checkpoint", str(ws.root / "ck.pt")),
        raises=CommandFailed,
        names="exit 1: .*ck.pt is not a complete checkpoint",
    ),
    Case(
        "cli-checkpoint-of-another-recipe",
        "cli",
        "python -m nbhelpers.examples.mnist",
        "--checkpoint naming a checkpoint written with another --max-lr",
        "exit status 1 naming the file and the differing field; the checkpoint unchanged",
        setup=_other_recipe_checkpoint,
        act=lambda ws: _cli(ws, *TINY, "--checkpoint", str(ws.root / "ck.pt")),
        raises=CommandFailed,
        names=r"exit 1: .*ck.pt was written by a different recipe \(max_lr: 0.001 -> 0.003\)",
    ),
    Case(
        "cli-resident-under-stale-launch",
        "cli",
        "python -m nbhelpers.examples.mnist",
        "--resident with WORLD_SIZE=2 left in the environment",
        "exit status 2 naming --resident and torchrun",
        setup=lambda ws: _stale_launch(ws),
        act=lambda ws: _cli(ws, *TINY, "--resident"),
        raises=CommandFailed,
        names="exit 2: .*resident=True cannot be combined with torchrun",
    ),
    Case(
        "cli-stale-launch-variables",
        "environment",
        "python -m nbhelpers.examples.mnist",
        "WORLD_SIZE=2 RANK=0 MASTER_ADDR/PORT left over from an earlier torchrun, no other process",
        "exit status 1 within --join-timeout, naming the launch variables",
        setup=lambda ws: _stale_launch(ws),
        act=lambda ws: _cli(ws, *TINY, "--join-timeout", "1"),
        raises=CommandFailed,
        names="exit 1: .*WORLD_SIZE",
    ),
    Case(
        "cli-rank-out-of-range",
        "environment",
        "python -m nbhelpers.examples.mnist",
        "WORLD_SIZE=2 with RANK=5",
        "exit status 1 naming RANK and its range",
        setup=lambda ws: _stale_launch(ws, rank="5"),
        act=lambda ws: _cli(ws, *TINY, "--join-timeout", "1"),
        raises=CommandFailed,
        names=r"exit 1: .*RANK='5' must be in 0\.\.1",
    ),
    Case(
        "cli-world-size-not-a-number",
        "environment",
        "python -m nbhelpers.examples.mnist",
        "WORLD_SIZE=two",
        "exit status 2 naming WORLD_SIZE",
        setup=lambda ws: ws.env.setenv("WORLD_SIZE", "two"),
        act=lambda ws: _cli(ws, *TINY),
        raises=CommandFailed,
        names="exit [12]: .*WORLD_SIZE='two'",
    ),
    Case(
        "cli-device-variable-unknown",
        "environment",
        "python -m nbhelpers.examples.mnist",
        "NBHELPERS_DEVICE=gpu0 with --device auto",
        "exit status 2 naming the variable",
        setup=lambda ws: ws.env.setenv("NBHELPERS_DEVICE", "gpu0"),
        act=lambda ws: _cli(ws, *TINY[:-3], "--quiet", "--device", "auto"),
        raises=CommandFailed,
        names="exit 2: .*NBHELPERS_DEVICE='gpu0'",
    ),
    Case(
        "cli-offline-data-folder-read-only",
        "environment",
        "python -m nbhelpers.examples.mnist",
        "offline, with a read-only data folder and no mirror",
        "trains on the embedded digits and says so; nothing written",
        setup=lambda ws: os.chmod(ws.data, 0o555),
        act=lambda ws: _cli(ws, *TINY),
        expect=lambda result, ws: _finished(result, ws) or None,
    ),
    bad_flag(
        "checkpoint-dev-null",
        [*TINY, "--checkpoint", os.devnull],
        "--checkpoint /dev/null: /dev/null is a character device, not a regular file",
        "--checkpoint /dev/null (as root, the run would replace the system's /dev/null)",
    ),
    # ---- real runs: signals, a second run, a full disk
    Case(
        "cli-ctrl-c",
        "signals",
        "python -m nbhelpers.examples.mnist",
        "Ctrl-C (SIGINT) to a run with --checkpoint after its first epoch",
        "one line, exit status 130, the checkpoint whole and resumable, no lock or "
        "temporary file left",
        act=lambda ws: _interrupt_run(ws, signal.SIGINT),
        expect=_stopped_with_checkpoint(signal.SIGINT),
        may_create=("data/run.pt",),
    ),
    Case(
        "cli-sigterm",
        "signals",
        "python -m nbhelpers.examples.mnist",
        "SIGTERM (kill, a scheduler's time limit) to a run with --checkpoint",
        "handled as Ctrl-C: one line, exit status 143, the checkpoint whole",
        act=lambda ws: _interrupt_run(ws, signal.SIGTERM),
        expect=_stopped_with_checkpoint(signal.SIGTERM),
        may_create=("data/run.pt",),
    ),
    Case(
        "cli-same-checkpoint-twice",
        "concurrent writers",
        "python -m nbhelpers.examples.mnist",
        "two runs started together with the same --checkpoint",
        "one runs; the other refuses before training: one line naming the first (pid, "
        "host, start, command), exit status 1 (both wrote every epoch, silently, before)",
        act=_two_runs,
        expect=_second_refused,
        may_create=("data/run.pt",),
    ),
    Case(
        "cli-checkpoint-full-disk",
        "full disk",
        "python -m nbhelpers.examples.mnist",
        "--checkpoint on a real 1 MiB tmpfs; the 2.8 MB checkpoint does not fit",
        "one line naming the checkpoint and the full disk, exit status 1 (a 38-line "
        "traceback before); nothing left on the disk",
        act=_on_small_disk,
        expect=_one_line_no_space,
        may_create=("disk",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_cli_case(case: Case, workspace: Workspace) -> None:
    run_case(case, workspace)
