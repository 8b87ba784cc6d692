"""Hostile inputs against nbhelpers.train: checkpoint files, launch variables, Trainer arguments."""

from __future__ import annotations

import errno
import io
import math
import os
import pickle
import signal
import socket
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from harness import Case, Workspace, run_case
from torch.utils.data import DataLoader, TensorDataset

from nbhelpers import locks
from nbhelpers.storage import current_umask
from nbhelpers.train import (
    EarlyStopping,
    LRRangeTest,
    SchedulerStatsRecorder,
    Trainer,
    check_checkpoint_path,
    join_process_group,
)
from nbhelpers.train.distributed import ProcessGroupError

# ---- builders ------------------------------------------------------------------------------------


def _net(hidden: int = 8, out: int = 2, extra: bool = False) -> nn.Sequential:
    torch.manual_seed(0)
    layers = [nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, out)]
    if extra:
        layers.append(nn.Linear(out, out))
    return nn.Sequential(*layers)


def _data(n: int = 16, nan: bool = False) -> DataLoader:
    X = torch.randn(n, 4, generator=torch.Generator().manual_seed(1))
    if nan:
        X = torch.full_like(X, math.nan)
    return DataLoader(TensorDataset(X, (X[:, 0] > 0).long()), batch_size=8)


def _trainer(
    model: nn.Module | None = None,
    optim: str = "adamw",
    scheduler: str | None = None,
    split_groups: tuple[int, ...] | None = None,
    **options: Any,
) -> Trainer:
    """A small Trainer; ``split_groups``: parameter tensors per optimizer group."""
    model = model if model is not None else _net()
    params: Any = list(model.parameters())
    if split_groups is not None:
        bounds, groups = 0, []
        for size in split_groups:
            groups.append({"params": params[bounds : bounds + size]})
            bounds += size
        params = groups
    built = (
        torch.optim.SGD(params, lr=0.1)
        if optim == "sgd"
        else torch.optim.AdamW(params, lr=1e-2)
    )
    schedulers = {
        "step": lambda o: torch.optim.lr_scheduler.StepLR(o, 1),
        "onecycle": lambda o: torch.optim.lr_scheduler.OneCycleLR(
            o, max_lr=0.1, total_steps=4
        ),
    }
    sched = schedulers[scheduler](built) if scheduler else None
    options.setdefault("device", "cpu")
    options.setdefault("verbose", False)
    return Trainer(model, built, F.cross_entropy, sched, **options)


def _saved(ws: Workspace, name: str = "ckpt.pt", **kwargs: Any) -> Path:
    trainer = _trainer(**kwargs)
    trainer.run(1, _data())
    return trainer.save_checkpoint(ws.root / name)


def _onto_dev_null(ws: Workspace) -> None:
    try:
        _trainer().save_checkpoint(os.devnull)
    finally:
        assert stat.S_ISCHR(os.stat(os.devnull).st_mode), "/dev/null was replaced"


def _socket_file(ws: Workspace) -> None:
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(ws.root / "ckpt.pt"))


def _old_checkpoint_on_small_disk(ws: Workspace) -> None:
    disk = ws.small_disk("disk", 256)
    _trainer().save_checkpoint(disk / "ckpt.pt")


def _save_big(ws: Workspace) -> Path:
    # 4 -> 20,000 -> 2: 120,000 weights, with AdamW's two moments about 1.4 MB
    trainer = _trainer(model=_net(hidden=20_000))
    trainer.run(1, _data())
    return trainer.save_checkpoint(ws.root / "disk" / "ckpt.pt")


def _state(trainer: Trainer) -> tuple:
    """Everything load_checkpoint could change, as comparable values."""
    return (
        [value.clone() for value in trainer.model.state_dict().values()],
        repr(trainer.optim.state_dict()) if trainer.optim is not None else None,
        repr(trainer.scheduler.state_dict()) if trainer.scheduler is not None else None,
        repr(
            (trainer.train_log, trainer.valid_log, trainer.epoch, trainer.global_step)
        ),
        torch.get_rng_state(),
    )


def _same(a: tuple, b: tuple) -> bool:
    tensors_equal = len(a[0]) == len(b[0]) and all(
        torch.equal(x, y) for x, y in zip(a[0], b[0])
    )
    return tensors_equal and a[1:4] == b[1:4] and torch.equal(a[4], b[4])


def _load_into(ws: Workspace, name: str = "ckpt.pt", **kwargs: Any) -> None:
    """Load ``name`` into a freshly trained Trainer; whatever happens, nothing of it may change."""
    target = _trainer(**kwargs)
    target.run(1, _data(8))
    before = _state(target)
    try:
        target.load_checkpoint(ws.root / name)
    finally:
        if not _same(before, _state(target)):
            raise AssertionError("load_checkpoint changed the Trainer before failing")


def _write(ws: Workspace, name: str, content: bytes) -> None:
    (ws.root / name).write_bytes(content)


def _truncate(ws: Workspace) -> None:
    path = _saved(ws)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_tensor_byte(ws: Workspace) -> None:
    path = _saved(ws)
    with zipfile.ZipFile(path) as archive:
        member = next(
            info
            for info in archive.infolist()
            if "/data/" in info.filename and info.file_size > 16
        )
    data = bytearray(path.read_bytes())
    header = member.header_offset
    name_length = int.from_bytes(data[header + 26 : header + 28], "little")
    extra_length = int.from_bytes(data[header + 28 : header + 30], "little")
    data[header + 30 + name_length + extra_length + 5] ^= 0x10
    path.write_bytes(bytes(data))


def _foreign_zip(ws: Workspace) -> None:
    with zipfile.ZipFile(ws.root / "ckpt.pt", "w") as archive:
        archive.writestr(
            "notes/readme.txt", "a zip archive, but not one torch.save wrote"
        )


class _Payload:
    """Pickles as a call of os.system: what a malicious 'checkpoint' would run on load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def _malicious(ws: Workspace) -> None:
    """A torch.save archive whose data.pkl is replaced by a pickle that would create a file."""
    path = _saved(ws)
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(path) as source,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as out,
    ):
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename.endswith("/data.pkl"):
                content = pickle.dumps(
                    {"format": 2, "model": _Payload(ws.root / "pwned")}, protocol=2
                )
            out.writestr(info.filename, content)
    path.write_bytes(buffer.getvalue())


def _interrupting_save(kind: str) -> Any:
    def fake_save(obj: Any, destination: Any, *args: Any, **kwargs: Any) -> None:
        Path(destination).write_bytes(b"PK\x03\x04 half a checkpoint")
        if kind == "interrupt":
            raise KeyboardInterrupt("simulated Ctrl-C inside torch.save")
        raise OSError(errno.ENOSPC, "No space left on device")

    return fake_save


def _save_with(ws: Workspace, kind: str) -> None:
    trainer = _trainer()
    ws.env.setattr(torch, "save", _interrupting_save(kind))
    trainer.save_checkpoint(ws.root / "ckpt.pt")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _launch(ws: Workspace, **overrides: str | None) -> None:
    """Set torchrun's five variables as a stale shell would hold them (a free port)."""
    values = {
        "WORLD_SIZE": "2",
        "RANK": "0",
        "LOCAL_RANK": "0",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
    }
    values.update(overrides)
    for name, value in values.items():
        if value is None:
            ws.env.delenv(name, raising=False)
        else:
            ws.env.setenv(name, value)


def _train_under_stale_variables(ws: Workspace) -> Trainer:
    _launch(ws, RANK="1", LOCAL_RANK="1")
    trainer = _trainer()
    trainer.run(1, _data())
    return trainer


def _single_process(trainer: Trainer, _ws: Workspace) -> None:
    assert not trainer.distributed and trainer.rank == 0 and trainer.world_size == 1, (
        vars(trainer)
    )
    assert trainer.global_step == 2 and not torch.distributed.is_initialized()


def _new_file_mode(path: Path, _ws: Workspace) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o666 & ~current_umask(), oct(mode)


def _exhausted_one_cycle(ws: Workspace) -> None:
    trainer = _trainer(scheduler="onecycle")  # 4 steps in all; one epoch takes 2
    trainer.run(1, _data())
    trainer.run(2, _data())


class _InterruptingAdamW(torch.optim.AdamW):
    """AdamW that sends this process a SIGINT (a Ctrl-C) right after its third step."""

    steps = 0

    def step(self, closure=None):  # type: ignore[override]
        result = super().step(closure)
        type(self).steps += 1
        if type(self).steps == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return result


def _ctrl_c_inside_a_step(ws: Workspace) -> dict[str, int]:
    """Train until the SIGINT lands between optim.step() and the Trainer's bookkeeping."""
    _InterruptingAdamW.steps = 0
    model = _net()
    optim = _InterruptingAdamW(model.parameters(), lr=1e-3)
    trainer = Trainer(model, optim, F.cross_entropy, device="cpu", verbose=False)
    try:
        trainer.run(4, _data(64))
    except KeyboardInterrupt:
        pass
    state = next(iter(optim.state.values()))
    return {
        "optimizer steps": int(state["step"]),
        "global_step": trainer.global_step,
        "logged": len(trainer.train_log["loss"]),
    }


def _step_and_bookkeeping_agree(counts: dict[str, int], ws: Workspace) -> None:
    if len(set(counts.values())) != 1 or counts["global_step"] != 3:
        pytest.fail(f"the step and its bookkeeping disagree: {counts}")


def _checkpoint_in_use(ws: Workspace) -> None:
    target = ws.root / "ckpt.pt"
    with locks.exclusive(target, "checkpoint"):
        _trainer().run(1, _data(), checkpoint=target)


# ---- cases ---------------------------------------------------------------------------------------

CHECKPOINT_CASES = [
    Case(
        "load-random-bytes",
        "checkpoints",
        "Trainer.load_checkpoint",
        "a file of random bytes",
        "ValueError naming the file: not a torch.save archive",
        setup=lambda ws: _write(ws, "ckpt.pt", os.urandom(4096)),
        act=lambda ws: _load_into(ws),
        raises=ValueError,
        names=r"ckpt\.pt is not a complete checkpoint",
    ),
    Case(
        "load-truncated",
        "checkpoints",
        "Trainer.load_checkpoint",
        "a checkpoint cut in half (an interrupted copy)",
        "ValueError naming the file (no zip directory at its end); the Trainer unchanged",
        setup=_truncate,
        act=lambda ws: _load_into(ws),
        raises=ValueError,
        names=r"ckpt\.pt is not a complete checkpoint.*truncated",
    ),
    Case(
        "load-empty-file",
        "checkpoints",
        "Trainer.load_checkpoint",
        "an empty (0-byte) file",
        "ValueError naming the file",
        setup=lambda ws: _write(ws, "ckpt.pt", b""),
        act=lambda ws: _load_into(ws),
        raises=ValueError,
        names=r"ckpt\.pt is empty",
    ),
    Case(
        "load-foreign-torch-dict",
        "checkpoints",
        "Trainer.load_checkpoint",
        "torch.save({'weights': tensor}) from another program",
        "ValueError: not a Trainer checkpoint, naming the file and what it holds",
        setup=lambda ws: torch.save({"weights": torch.zeros(3)}, ws.root / "ckpt.pt"),
        act=lambda ws: _load_into(ws),
        raises=ValueError,
        names=r"ckpt\.pt is not a Trainer checkpoint .*weights",
    ),
    Case(
        "load-zip-not-checkpoint",
        "checkpoints",
        "Trainer.load_checkpoint",
        "a valid zip archive holding a text file",
        "ValueError naming the file",
        setup=_foreign_zip,
        act=lambda ws: _load_into(ws),
        raises=ValueError,
        names=r"ckpt\.pt is not a readable torch checkpoint",
    ),
    Case(
        "load-malicious-pickle",
        "checkpoints",
        "Trainer.load_checkpoint",
        "a checkpoint whose pickle calls os.system('touch pwned') when unpickled",
        "ValueError naming the file; the code never runs (no file 'pwned')",
        setup=_malicious,
        act=lambda ws: _load_into(ws),
        raises=ValueError,
        names=r"ckpt\.pt holds objects other than tensors",
    ),
    Case(
        "load-tampered-tensor-bytes",
        "checkpoints",
        "Trainer.load_checkpoint",
        "one bit of a weight tensor flipped in the file",
        "ValueError naming the file and the archive member whose CRC-32 fails",
        setup=_flip_tensor_byte,
        act=lambda ws: _load_into(ws),
        raises=ValueError,
        names=r"ckpt\.pt: the bytes of .*data/.* CRC-32",
    ),
    Case(
        "load-shape-mismatch",
        "checkpoints",
        "Trainer.load_checkpoint",
        "weights of a wider hidden layer (16 instead of 8)",
        "ValueError naming the key and both shapes; nothing overwritten",
        setup=lambda ws: _saved(ws, model=_net(hidden=16)),
        act=lambda ws: _load_into(ws),
        raises=ValueError,
        names=r"'0.weight' has shape \(16, 4\) in the file, \(8, 4\)",
    ),
    Case(
        "load-dtype-mismatch",
        "checkpoints",
        "Trainer.load_checkpoint",
        "float64 weights into a float32 model",
        "ValueError naming the key and both dtypes",
        setup=lambda ws: _trainer(model=_net().double()).save_checkpoint(
            ws.root / "ckpt.pt"
        ),
        act=lambda ws: _load_into(ws),
        raises=ValueError,
        names=r"'0.weight' has dtype torch.float64 in the file",
    ),
    Case(
        "load-extra-keys",
        "checkpoints",
        "Trainer.load_checkpoint",
        "a checkpoint of a model with one more layer",
        "ValueError naming the unexpected keys",
        setup=lambda ws: _saved(ws, model=_net(extra=True)),
        act=lambda ws: _load_into(ws),
        raises=ValueError,
        names=r"unexpected keys \['3.weight', '3.bias'\]",
    ),
    Case(
        "load-missing-keys",
        "checkpoints",
        "Trainer.load_checkpoint",
        "a checkpoint of a model with one layer less",
        "ValueError naming the missing keys",
        setup=lambda ws: _saved(ws),
        act=lambda ws: _load_into(ws, model=_net(extra=True)),
        raises=ValueError,
        names=r"missing keys \['3.weight', '3.bias'\]",
    ),
    Case(
        "load-sgd-into-adam",
        "checkpoints",
        "Trainer.load_checkpoint",
        "an SGD checkpoint into an AdamW Trainer",
        "ValueError naming both optimizer classes (not a KeyError 'betas' in the next run)",
        setup=lambda ws: _saved(ws, optim="sgd"),
        act=lambda ws: _load_into(ws),
        raises=ValueError,
        names="state of a SGD optimizer, but this Trainer's optimizer is a AdamW",
    ),
    Case(
        "load-param-group-count",
        "checkpoints",
        "Trainer.load_checkpoint",
        "2 parameter groups saved, 1 in the Trainer",
        "ValueError naming both group structures; the model not replaced",
        setup=lambda ws: _saved(ws, split_groups=(2, 2)),
        act=lambda ws: _load_into(ws),
        raises=ValueError,
        names=r"2 group\(s\) of \[2, 2\] parameters in the file, 1 group\(s\) of \[4\]",
    ),
    Case(
        "load-param-group-size",
        "checkpoints",
        "Trainer.load_checkpoint",
        "groups of 2+2 parameters saved, 1+3 in the Trainer",
        "ValueError naming both group sizes",
        setup=lambda ws: _saved(ws, split_groups=(2, 2)),
        act=lambda ws: _load_into(ws, split_groups=(1, 3)),
        raises=ValueError,
        names=r"\[2, 2\] parameters in the file, .*\[1, 3\]",
    ),
    Case(
        "load-scheduler-class",
        "checkpoints",
        "Trainer.load_checkpoint",
        "a StepLR checkpoint into a Trainer with OneCycleLR",
        "ValueError naming both scheduler classes",
        setup=lambda ws: _saved(ws, scheduler="step"),
        act=lambda ws: _load_into(ws, scheduler="onecycle"),
        raises=ValueError,
        names="state of a StepLR scheduler, but this Trainer's scheduler is a OneCycleLR",
    ),
    Case(
        "load-scheduler-missing",
        "checkpoints",
        "Trainer.load_checkpoint",
        "a checkpoint without scheduler into a Trainer with one",
        "ValueError naming the file and the missing part",
        setup=lambda ws: _saved(ws),
        act=lambda ws: _load_into(ws, scheduler="step"),
        raises=ValueError,
        names=r"ckpt\.pt holds no scheduler state",
    ),
    Case(
        "load-scheduler-unexpected",
        "checkpoints",
        "Trainer.load_checkpoint",
        "a checkpoint with a scheduler into a Trainer without",
        "ValueError naming the scheduler the Trainer lacks",
        setup=lambda ws: _saved(ws, scheduler="step"),
        act=lambda ws: _load_into(ws),
        raises=ValueError,
        names=r"holds scheduler state \(StepLR\), but this Trainer has no scheduler",
    ),
    Case(
        "load-unknown-format",
        "checkpoints",
        "Trainer.load_checkpoint",
        "a dict with format 99",
        "ValueError naming the format",
        setup=lambda ws: torch.save({"format": 99}, ws.root / "ckpt.pt"),
        act=lambda ws: _load_into(ws),
        raises=ValueError,
        names="unknown checkpoint format 99",
    ),
    Case(
        "load-missing-file",
        "checkpoints",
        "Trainer.load_checkpoint",
        "a path where no file is",
        "FileNotFoundError naming the path",
        act=lambda ws: _load_into(ws, name="nothing.pt"),
        raises=FileNotFoundError,
        names=r"no checkpoint at .*nothing\.pt",
    ),
    Case(
        "load-folder",
        "checkpoints",
        "Trainer.load_checkpoint",
        "a folder instead of a file",
        "IsADirectoryError naming the folder",
        setup=lambda ws: (ws.root / "ckpt.pt").mkdir(),
        act=lambda ws: _load_into(ws),
        raises=IsADirectoryError,
        names=r"ckpt\.pt is a folder",
    ),
    Case(
        "load-restore-rng-not-bool",
        "arguments",
        "Trainer.load_checkpoint",
        "restore_rng='no'",
        "ValueError naming the value",
        setup=lambda ws: _saved(ws),
        act=lambda ws: _trainer().load_checkpoint(
            ws.root / "ckpt.pt", restore_rng="no"
        ),
        raises=ValueError,
        names="restore_rng must be True or False, got 'no'",
    ),
    Case(
        "save-interrupted",
        "checkpoints",
        "Trainer.save_checkpoint",
        "Ctrl-C inside torch.save while replacing a checkpoint",
        "KeyboardInterrupt passes; the old checkpoint intact; no temporary file",
        setup=lambda ws: _saved(ws),
        act=lambda ws: _save_with(ws, "interrupt"),
        raises=KeyboardInterrupt,
        names="simulated Ctrl-C",
    ),
    Case(
        "save-disk-full",
        "checkpoints",
        "Trainer.save_checkpoint",
        "OSError ENOSPC from the writer while replacing a checkpoint",
        "OSError naming the checkpoint path; the old checkpoint intact; no temporary file",
        setup=lambda ws: _saved(ws),
        act=lambda ws: _save_with(ws, "full"),
        raises=OSError,
        names=r"could not write .*ckpt\.pt: No space left",
    ),
    Case(
        "save-read-only-target",
        "checkpoints",
        "Trainer.save_checkpoint",
        "an existing checkpoint made read-only (chmod 444)",
        "PermissionError naming the file; the file unchanged",
        setup=lambda ws: os.chmod(_saved(ws), 0o444),
        act=lambda ws: _trainer().save_checkpoint(ws.root / "ckpt.pt"),
        raises=PermissionError,
        names=r"ckpt\.pt is read-only",
    ),
    Case(
        "save-missing-folder",
        "checkpoints",
        "Trainer.save_checkpoint",
        "a path in a folder that does not exist",
        "FileNotFoundError naming the folder",
        act=lambda ws: _trainer().save_checkpoint(ws.root / "no" / "such" / "ckpt.pt"),
        raises=FileNotFoundError,
        names="checkpoint folder does not exist: .*no/such",
    ),
    Case(
        "save-target-is-folder",
        "checkpoints",
        "Trainer.save_checkpoint",
        "a path that is a folder",
        "IsADirectoryError naming it",
        setup=lambda ws: (ws.root / "ckpt.pt").mkdir(),
        act=lambda ws: _trainer().save_checkpoint(ws.root / "ckpt.pt"),
        raises=IsADirectoryError,
        names=r"ckpt\.pt is a folder",
    ),
    Case(
        "save-new-file-mode",
        "checkpoints",
        "Trainer.save_checkpoint",
        "a new checkpoint written through a temporary file",
        "mode 0666 less the umask (not tempfile's 0600)",
        act=lambda ws: _trainer().save_checkpoint(ws.root / "new.pt"),
        expect=_new_file_mode,
        may_create=("new.pt",),
    ),
    Case(
        "save-onto-dev-null",
        "checkpoints",
        "Trainer.save_checkpoint",
        "save_checkpoint(os.devnull): as root, /dev/null would be replaced by a file",
        "ValueError naming /dev/null as a character device; /dev/null unchanged",
        act=_onto_dev_null,
        raises=ValueError,
        names=r"/dev/null is a character device, not a regular file; a checkpoint "
        r"path must name a regular file or a new one",
    ),
    Case(
        "save-onto-fifo",
        "checkpoints",
        "Trainer.save_checkpoint",
        "a checkpoint path that is a FIFO (named pipe)",
        "ValueError naming the FIFO; the FIFO left as it is",
        setup=lambda ws: os.mkfifo(ws.root / "ckpt.pt"),
        act=lambda ws: _trainer().save_checkpoint(ws.root / "ckpt.pt"),
        raises=ValueError,
        names=r"ckpt\.pt is a FIFO \(named pipe\), not a regular file",
    ),
    Case(
        "save-onto-socket",
        "checkpoints",
        "Trainer.save_checkpoint",
        "a checkpoint path that is a Unix socket",
        "ValueError naming the socket; the socket left as it is",
        setup=_socket_file,
        act=lambda ws: _trainer().save_checkpoint(ws.root / "ckpt.pt"),
        raises=ValueError,
        names=r"ckpt\.pt is a socket, not a regular file",
    ),
    Case(
        "save-full-disk-real",
        "full disk",
        "Trainer.save_checkpoint",
        "replace a small checkpoint on a real 256 KiB tmpfs with a 1.4 MB one (torch "
        "raises RuntimeError: [enforce fail at inline_container.cc] unexpected pos)",
        "OSError (ENOSPC) naming the checkpoint; the old checkpoint intact; no "
        "temporary file",
        setup=_old_checkpoint_on_small_disk,
        act=_save_big,
        raises=OSError,
        names=r"\[Errno 28\] could not write .*disk/ckpt\.pt: No space left on device",
    ),
    Case(
        "checkpoint-path-dev-null",
        "arguments",
        "check_checkpoint_path",
        "check_checkpoint_path('/dev/null')",
        "ValueError: a character device is neither a regular file nor a new path",
        act=lambda ws: check_checkpoint_path(os.devnull),
        raises=ValueError,
        names=r"/dev/null is a character device",
    ),
    Case(
        "checkpoint-path-not-a-path",
        "arguments",
        "check_checkpoint_path",
        "check_checkpoint_path(None)",
        "ValueError naming the value",
        act=lambda ws: check_checkpoint_path(None),
        raises=ValueError,
        names="non-empty str or os.PathLike, got None",
    ),
]


ENVIRONMENT_CASES = [
    Case(
        "trainer-stale-launch-variables",
        "environment",
        "Trainer",
        "WORLD_SIZE=2 RANK=1 MASTER_ADDR/MASTER_PORT left in the shell, then Trainer() and run()",
        "a single-process run: no process group joined, no wait",
        act=_train_under_stale_variables,
        expect=_single_process,
    ),
    Case(
        "join-stale-rank-0",
        "environment",
        "join_process_group",
        "stale WORLD_SIZE=2 RANK=0 (this process would be the master; nobody else comes)",
        "ProcessGroupError after timeout_s, naming the variables and suggesting stale values",
        act=lambda ws: (_launch(ws), join_process_group("cpu", timeout_s=1.0)),
        raises=ProcessGroupError,
        names=r"WORLD_SIZE=2 RANK=0 LOCAL_RANK=0 MASTER_ADDR=127\.0\.0\.1 MASTER_PORT=\d+ within 1 s.*stale",
    ),
    Case(
        "join-stale-rank-1",
        "environment",
        "join_process_group",
        "stale WORLD_SIZE=2 RANK=1 pointing at a port where no master listens",
        "ProcessGroupError after timeout_s, naming the variables",
        act=lambda ws: (
            _launch(ws, RANK="1", LOCAL_RANK="1"),
            join_process_group("cpu", timeout_s=1.0),
        ),
        raises=ProcessGroupError,
        names=r"RANK=1 .*MASTER_PORT=\d+ within 1 s.*unset WORLD_SIZE",
    ),
    Case(
        "join-world-size-not-a-number",
        "environment",
        "join_process_group",
        "WORLD_SIZE=two",
        "ValueError naming the variable and its value",
        act=lambda ws: (_launch(ws, WORLD_SIZE="two"), join_process_group("cpu")),
        raises=ValueError,
        names="WORLD_SIZE='two' is not an integer",
    ),
    Case(
        "join-rank-out-of-range",
        "environment",
        "join_process_group",
        "WORLD_SIZE=2 RANK=5",
        "ValueError naming RANK and its range",
        act=lambda ws: (_launch(ws, RANK="5"), join_process_group("cpu")),
        raises=ValueError,
        names=r"RANK='5' must be in 0\.\.1",
    ),
    Case(
        "join-master-port-missing",
        "environment",
        "join_process_group",
        "WORLD_SIZE=2 without MASTER_PORT",
        "ValueError naming MASTER_PORT",
        act=lambda ws: (_launch(ws, MASTER_PORT=None), join_process_group("cpu")),
        raises=ValueError,
        names="MASTER_PORT is not set",
    ),
    Case(
        "join-master-port-out-of-range",
        "environment",
        "join_process_group",
        "MASTER_PORT=99999",
        "ValueError naming the port",
        act=lambda ws: (_launch(ws, MASTER_PORT="99999"), join_process_group("cpu")),
        raises=ValueError,
        names="MASTER_PORT='99999' must be a port number",
    ),
    Case(
        "join-master-addr-blank",
        "environment",
        "join_process_group",
        "MASTER_ADDR set to spaces",
        "ValueError naming MASTER_ADDR",
        act=lambda ws: (_launch(ws, MASTER_ADDR="  "), join_process_group("cpu")),
        raises=ValueError,
        names="MASTER_ADDR='  ' must be a host name",
    ),
    Case(
        "join-timeout-zero",
        "arguments",
        "join_process_group",
        "timeout_s=0",
        "ValueError naming the value",
        act=lambda ws: join_process_group("cpu", timeout_s=0),
        raises=ValueError,
        names="timeout_s must be a finite number of seconds > 0, got 0",
    ),
    Case(
        "device-env-unknown",
        "environment",
        "Trainer",
        "NBHELPERS_DEVICE=tpu",
        "ValueError naming the variable and its value",
        act=lambda ws: (
            ws.env.setenv("NBHELPERS_DEVICE", "tpu"),
            _trainer(device=None),
        ),
        raises=ValueError,
        names="NBHELPERS_DEVICE='tpu'",
    ),
    Case(
        "device-env-missing-gpu",
        "environment",
        "Trainer",
        "NBHELPERS_DEVICE=cuda:99",
        "ValueError naming the variable: no such GPU here",
        act=lambda ws: (
            ws.env.setenv("NBHELPERS_DEVICE", "cuda:99"),
            _trainer(device=None),
        ),
        raises=ValueError,
        names="NBHELPERS_DEVICE='cuda:99'",
    ),
    Case(
        "device-argument-unknown",
        "arguments",
        "Trainer",
        "device='gpu0'",
        "ValueError naming the value",
        act=lambda ws: _trainer(device="gpu0"),
        raises=ValueError,
        names="device='gpu0'",
    ),
]


def _arg(
    case_id: str,
    target: str,
    tried: str,
    act: Any,
    names: str,
    raises: type[BaseException] = ValueError,
) -> Case:
    return Case(
        case_id,
        "arguments",
        target,
        tried,
        f"{raises.__name__} naming the value",
        act=act,
        raises=raises,
        names=names,
    )


ARGUMENT_CASES = [
    _arg(
        "run-epochs-zero",
        "Trainer.run",
        "epochs=0",
        lambda ws: _trainer().run(0, _data()),
        "epochs must be an int >= 1, got 0",
    ),
    _arg(
        "run-epochs-negative",
        "Trainer.run",
        "epochs=-1",
        lambda ws: _trainer().run(-1, _data()),
        "got -1",
    ),
    _arg(
        "run-epochs-float",
        "Trainer.run",
        "epochs=1.5",
        lambda ws: _trainer().run(1.5, _data()),
        "got 1.5",
    ),
    _arg(
        "run-epochs-bool",
        "Trainer.run",
        "epochs=True",
        lambda ws: _trainer().run(True, _data()),
        "got True",
    ),
    _arg(
        "run-window-zero",
        "Trainer.run",
        "window_size=0",
        lambda ws: _trainer().run(1, _data(), window_size=0),
        "window_size must be an int >= 1 or None, got 0",
    ),
    _arg(
        "run-loader-none",
        "Trainer.run",
        "train_loader=None",
        lambda ws: _trainer().run(1, None),
        "train_loader must be an iterable .* got None",
    ),
    _arg(
        "run-loader-empty",
        "Trainer.run",
        "a train_loader that yields nothing",
        lambda ws: _trainer().run(1, iter(())),
        "yielded no batches in epoch 1",
    ),
    _arg(
        "run-loader-not-pairs",
        "Trainer.run",
        "batches that are bare tensors, not (x, y)",
        lambda ws: _trainer().run(1, [torch.zeros(2, 4)]),
        r"a batch must be a pair \(x, y\), got a Tensor",
    ),
    _arg(
        "run-one-cycle-exhausted",
        "Trainer.run",
        "run again after OneCycleLR's total_steps are used up",
        _exhausted_one_cycle,
        r"has 2 steps left .* but run\(2\) needs 4",
    ),
    _arg(
        "run-nan-validation",
        "Trainer.run",
        "a valid_loader whose inputs are NaN",
        lambda ws: _trainer().run(1, _data(), _data(nan=True)),
        "validation loss is nan after epoch 1",
        raises=FloatingPointError,
    ),
    _arg(
        "trainer-log-every-zero",
        "Trainer",
        "log_every=0",
        lambda ws: _trainer(log_every=0),
        "log_every must be an int >= 1, got 0",
    ),
    _arg(
        "trainer-clip-nan",
        "Trainer",
        "grad_clip_norm=nan",
        lambda ws: _trainer(grad_clip_norm=math.nan),
        "grad_clip_norm must be a finite number > 0 or None, got nan",
    ),
    _arg(
        "trainer-clip-inf",
        "Trainer",
        "grad_clip_norm=inf",
        lambda ws: _trainer(grad_clip_norm=math.inf),
        "got inf",
    ),
    _arg(
        "trainer-clip-negative",
        "Trainer",
        "grad_clip_norm=-1",
        lambda ws: _trainer(grad_clip_norm=-1.0),
        "got -1.0",
    ),
    _arg(
        "trainer-precision",
        "Trainer",
        "precision='fp64'",
        lambda ws: _trainer(precision="fp64"),
        "precision='fp64'",
    ),
    _arg(
        "trainer-scheduler-interval",
        "Trainer",
        "scheduler_interval='batch'",
        lambda ws: _trainer(scheduler_interval="batch"),
        "scheduler_interval='batch'",
    ),
    _arg(
        "trainer-callback-function",
        "Trainer",
        "callbacks=[print] (a plain function)",
        lambda ws: _trainer(callbacks=[print]),
        "must be a Callback object .*print",
    ),
    _arg(
        "trainer-callback-bare",
        "Trainer",
        "callbacks=EarlyStopping() (not in a list)",
        lambda ws: _trainer(callbacks=EarlyStopping()),
        "callbacks must be a list of Callback objects",
    ),
    _arg(
        "trainer-foreign-optimizer",
        "Trainer",
        "an optimizer over another model's parameters",
        lambda ws: Trainer(
            _net(),
            torch.optim.SGD(_net(out=3).parameters(), lr=0.1),
            F.cross_entropy,
            device="cpu",
        ),
        "holds 4 of its 4 parameter",
    ),
    _arg(
        "evaluate-none",
        "Trainer.evaluate",
        "evaluate(None)",
        lambda ws: _trainer().evaluate(None),
        "loader must be an iterable .* got None",
    ),
    _arg(
        "evaluate-empty",
        "Trainer.evaluate",
        "evaluate([])",
        lambda ws: _trainer().evaluate([]),
        "no examples",
    ),
    _arg(
        "predict-list-of-numbers",
        "Trainer.predict",
        "predict([1.0, 2.0])",
        lambda ws: _trainer().predict([1.0, 2.0]),
        "x must be an input tensor .* got list",
    ),
    _arg(
        "early-stopping-patience",
        "EarlyStopping",
        "patience=0",
        lambda ws: EarlyStopping(patience=0),
        "patience must be an int >= 1, got 0",
    ),
    _arg(
        "early-stopping-monitor",
        "EarlyStopping",
        "monitor='accuracy'",
        lambda ws: EarlyStopping(monitor="accuracy"),
        "monitor='accuracy'",
    ),
    _arg(
        "early-stopping-min-delta",
        "EarlyStopping",
        "min_delta=nan",
        lambda ws: EarlyStopping(min_delta=math.nan),
        "min_delta must be a finite number >= 0, got nan",
    ),
    _arg(
        "recorder-not-an-optimizer",
        "SchedulerStatsRecorder",
        "SchedulerStatsRecorder('adam')",
        lambda ws: SchedulerStatsRecorder("adam"),
        "optim must be a torch.optim.Optimizer or None, got 'adam'",
    ),
    _arg(
        "range-test-falling-rates",
        "LRRangeTest",
        "start=1.0, end=1e-5",
        lambda ws: LRRangeTest(start=1.0, end=1e-5),
        "start must be below end",
    ),
    _arg(
        "range-test-one-step",
        "LRRangeTest",
        "steps=1",
        lambda ws: LRRangeTest(steps=1),
        "steps must be an int >= 2, got 1",
    ),
    _arg(
        "range-test-zero-start",
        "LRRangeTest",
        "start=0",
        lambda ws: LRRangeTest(start=0),
        "start must be a finite number > 0, got 0",
    ),
]

ROUND_TWO_CASES = [
    Case(
        "ctrl-c-between-step-and-count",
        "signals",
        "Trainer.run",
        "a SIGINT that arrives right after optimizer.step(), before the step is counted",
        "KeyboardInterrupt after the step is booked: optimizer, global_step and the log agree",
        act=_ctrl_c_inside_a_step,
        expect=_step_and_bookkeeping_agree,
    ),
    Case(
        "run-on-a-checkpoint-in-use",
        "concurrent writers",
        "Trainer.run",
        "run(checkpoint=...) on a file whose lock another writer holds",
        "FileInUseError naming the holder before anything is loaded or written",
        act=_checkpoint_in_use,
        raises=locks.FileInUseError,
        names=r"ckpt\.pt.* is in use .*pid",
        may_create=("ckpt.pt.lock",),
    ),
]

CASES = CHECKPOINT_CASES + ENVIRONMENT_CASES + ARGUMENT_CASES + ROUND_TWO_CASES


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_train_case(case: Case, workspace: Workspace) -> None:
    run_case(case, workspace)
