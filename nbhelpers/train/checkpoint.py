"""Checkpoint files: checked paths, atomic writes, verified reads, and the Trainer's format.

Writing goes through ``storage.atomic_path`` (a temporary file renamed into place, with the
permissions ``open()`` would give; a read-only target is refused). Reading checks the file before
unpickling anything: it must be the zip archive ``torch.save`` writes, every member's CRC-32 must
match (a flipped byte in a tensor is caught here; ``torch.load`` alone would not notice), and it is
loaded with ``torch.load(weights_only=True)``, which refuses arbitrary pickled objects (so nothing
in the file can run code). Everything stored is therefore tensors, numbers, strings, None and plain
containers: NumPy's and Python's RNG states are converted to tensors and lists here.

``check_trainer_state`` compares a loaded Trainer checkpoint with the objects it is about to be
loaded into (every key, shape and dtype of the model, the optimizer's class and parameter groups,
the scheduler's class, the scaler's presence) so that ``Trainer.load_checkpoint`` can refuse a
mismatch before it changes anything.
"""

from __future__ import annotations

import errno
import os
import pickle
import random
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nbhelpers.storage import atomic_path, check_writable_file

FORMAT = 3
TRAIN_LOG_KEYS = ("loss", "accuracy")
VALID_LOG_KEYS = ("step", "loss", "accuracy")
# The keys of a format-3 Trainer checkpoint.

KEYS = frozenset(
    {
        "format",
        "model",
        "optim",
        "scheduler",
        "scaler",
        "train_batches",
        "train_log",
        "valid_log",
        "epoch",
        "global_step",
        "rng",
        "meta",
    }
)


# ---- random generators -------------------------------------------------------------------------


def capture_rng_state() -> dict[str, Any]:
    """The state of every random generator a training run draws from (torch CPU, CUDA, MPS,
    NumPy's global generator and Python's ``random``), as weights_only-loadable values."""
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "python": {
            "version": version,
            "internal": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    mps = getattr(torch, "mps", None)
    if mps is not None and torch.backends.mps.is_available():
        state["mps"] = mps.get_rng_state()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put back the generators saved by ``capture_rng_state`` (accelerator states when present)."""
    torch.set_rng_state(state["torch"])
    saved_np = state["numpy"]
    np.random.set_state(
        (
            saved_np["kind"],
            saved_np["keys"].numpy().astype(np.uint32),
            saved_np["pos"],
            saved_np["has_gauss"],
            saved_np["cached_gaussian"],
        )
    )
    saved_py = state["python"]
    random.setstate(
        (
            saved_py["version"],
            tuple(saved_py["internal"].tolist()),
            saved_py["gauss_next"],
        )
    )
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "mps" in state and torch.backends.mps.is_available():
        torch.mps.set_rng_state(state["mps"])


def check_rng_state(state: Any, path: Path) -> None:
    """Raise ValueError naming ``path`` unless ``state`` has the structure ``capture_rng_state`` gives."""
    problem = _rng_problem(state)
    if problem:
        raise ValueError(
            f"{path}: the saved random generator state is not usable ({problem})"
        )


def _rng_problem(state: Any) -> str:
    if not isinstance(state, dict) or not {"torch", "numpy", "python"} <= set(state):
        return "expected a dict with 'torch', 'numpy' and 'python'"
    if not _is_byte_vector(state["torch"]):
        return "'torch' is not a uint8 vector"
    saved_np, saved_py = state["numpy"], state["python"]
    if not isinstance(saved_np, dict) or set(saved_np) != {
        "kind",
        "keys",
        "pos",
        "has_gauss",
        "cached_gaussian",
    }:
        return "'numpy' does not have NumPy's five state fields"
    if not (
        isinstance(saved_np["keys"], torch.Tensor) and saved_np["keys"].shape == (624,)
    ):
        return "'numpy' keys are not 624 numbers"
    if not isinstance(saved_py, dict) or set(saved_py) != {
        "version",
        "internal",
        "gauss_next",
    }:
        return "'python' does not have the three fields of random.getstate()"
    if not (
        isinstance(saved_py["internal"], torch.Tensor)
        and saved_py["internal"].shape == (625,)
    ):
        return "'python' internal state is not 625 numbers"
    for accelerator in ("cuda", "mps"):
        value = state.get(accelerator)
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        if not all(_is_byte_vector(item) for item in values):
            return f"{accelerator!r} is not a uint8 vector (or a list of them)"
    return ""


def _is_byte_vector(value: Any) -> bool:
    return (
        isinstance(value, torch.Tensor)
        and value.dtype == torch.uint8
        and value.dim() == 1
    )


# ---- paths and files ---------------------------------------------------------------------------


def check_checkpoint_path(path: str | os.PathLike[str]) -> Path:
    """The checkpoint path as a ``Path``, after checking that a checkpoint can be written there.

    Call it before training so that a typo in a folder name is reported before hours of work,
    not after. ``save_checkpoint`` calls it too.

    Raises:
        ValueError: ``path`` is not a path (or is empty), or names something that is neither a
            regular file nor new (``/dev/null``, a FIFO, a socket): replacing it with a file
            would break it.
        FileNotFoundError: its folder does not exist.
        IsADirectoryError: ``path`` is a folder.
        PermissionError: ``path`` is a read-only file, or its folder is not writable.
    """
    if not isinstance(path, (str, os.PathLike)) or str(path).strip() == "":
        raise ValueError(
            f"a checkpoint path must be a non-empty str or os.PathLike, got {path!r}"
        )
    return check_writable_file(path, kind="checkpoint")


def save_atomically(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save(obj)`` to a temporary file beside ``path``, then renamed into place.

    A crash, SIGTERM or a full disk mid-write leaves the previous file intact and no temporary
    file (``storage.atomic_path``; a SIGKILL's is removed by the next save).

    Raises:
        ValueError, FileNotFoundError, IsADirectoryError, PermissionError: as
            ``check_checkpoint_path``.
        OSError: writing failed (a full disk, which torch reports as a RuntimeError); the
            message names ``path``.
    """
    target = check_checkpoint_path(path)
    try:
        with atomic_path(target) as temporary:
            torch.save(obj, temporary)
    except OSError as error:
        if str(target) in str(error):
            raise
        # OSError(errno, text) gives the matching subclass (PermissionError for EACCES, ...).
        code = error.errno if error.errno is not None else errno.EIO
        raise OSError(
            code, f"could not write the checkpoint {target}: {error.strerror or error}"
        ) from error
    return target


def load_safely(path: str | os.PathLike[str]) -> Any:
    """Read a file written by ``torch.save``, after checking it: tensors and plain data only.

    Checks, in order: a regular, non-empty file; a complete zip archive (``torch.save``'s format);
    every member's CRC-32; then ``torch.load(path, map_location="cpu", weights_only=True)``.

    Raises:
        ValueError: ``path`` is not a path.
        FileNotFoundError: no file at ``path``. IsADirectoryError: ``path`` is a folder.
        ValueError: empty, truncated, not a zip, altered bytes, or objects that weights_only
            loading refuses (the message names the file and the problem).
    """
    if not isinstance(path, (str, os.PathLike)) or str(path).strip() == "":
        raise ValueError(
            f"a checkpoint path must be a non-empty str or os.PathLike, got {path!r}"
        )
    source = Path(path)
    if source.is_dir():
        raise IsADirectoryError(f"{source} is a folder, not a checkpoint file")
    if not source.is_file():
        raise FileNotFoundError(f"no checkpoint at {source}")
    if source.stat().st_size == 0:
        raise ValueError(f"{source} is empty (0 bytes): not a checkpoint")
    if not zipfile.is_zipfile(source):
        raise ValueError(
            f"{source} is not a complete checkpoint: torch.save writes a zip archive, and this file has no "
            "zip directory at its end (truncated, or written by something else)"
        )
    try:
        with zipfile.ZipFile(source) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise ValueError(f"{source} is a damaged zip archive ({error})") from None
    if damaged is not None:
        raise ValueError(
            f"{source}: the bytes of {damaged!r} do not match their CRC-32 checksum; the file was altered or damaged"
        )
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first = (
            str(error).strip().splitlines()[0]
            if str(error).strip()
            else type(error).__name__
        )
        raise ValueError(
            f"{source} holds objects other than tensors and plain data; weights_only loading refused it ({first[:200]})"
        ) from None
    except Exception as error:  # noqa: BLE001 (a foreign or broken archive: name the file, not a pickle trace)
        raise ValueError(
            f"{source} is not a readable torch checkpoint ({type(error).__name__}: {error})"
        ) from None


# ---- the Trainer's checkpoint ------------------------------------------------------------------


def part_state(part: Any) -> dict[str, Any] | None:
    """``{"class": its class name, "state": its state_dict()}`` for an optimizer, scheduler or scaler."""
    if part is None:
        return None
    return {"class": type(part).__name__, "state": part.state_dict()}


def optimizer_state(optim: torch.optim.Optimizer | None) -> dict[str, Any] | None:
    """``part_state`` plus the number of parameters of each group (checked on load)."""
    if optim is None:
        return None
    sizes = [len(group["params"]) for group in optim.param_groups]
    return {
        "class": type(optim).__name__,
        "state": optim.state_dict(),
        "group_sizes": sizes,
    }


def check_trainer_state(
    state: Any,
    path: Path,
    *,
    model: torch.nn.Module,
    optim: torch.optim.Optimizer | None,
    scheduler: Any | None,
    scaler: Any | None,
    restore_rng: bool,
) -> None:
    """Raise ValueError naming ``path`` and the mismatch unless ``state`` fits these objects.

    Checked: the format and keys; every key, shape and dtype of the model's state; for a Trainer
    that trains (``optim`` given): the optimizer's class, its parameter groups (count and sizes)
    and the shapes of its per-parameter state, the scheduler's and the scaler's presence and
    class; the logs and counters; the RNG state when it will be restored.
    """
    if not isinstance(state, dict) or "format" not in state:
        found = (
            sorted(map(str, state))[:6]
            if isinstance(state, dict)
            else type(state).__name__
        )
        raise ValueError(
            f"{path} is not a Trainer checkpoint (no 'format' entry; found {found})"
        )
    if state["format"] != FORMAT:
        raise ValueError(
            f"{path}: unknown checkpoint format {state['format']!r} (this version reads format {FORMAT})"
        )
    if set(state) != KEYS:
        missing, extra = sorted(KEYS - set(state)), sorted(map(str, set(state) - KEYS))
        raise ValueError(
            f"{path} is not a complete Trainer checkpoint (missing {missing}, unexpected {extra})"
        )
    _check_model_state(state["model"], model.state_dict(), path)
    if optim is not None:
        _check_optimizer_state(state["optim"], optim, path)
        _check_part_state("scheduler", state["scheduler"], scheduler, path)
        _check_part_state("scaler", state["scaler"], scaler, path)
    if not isinstance(state["meta"], dict):
        raise ValueError(
            f"{path}: 'meta' must be a dict, got {type(state['meta']).__name__}"
        )
    if state["train_batches"] is not None and not isinstance(
        state["train_batches"], dict
    ):
        raise ValueError(
            f"{path}: 'train_batches' must be a dict or None, got {type(state['train_batches']).__name__}"
        )
    _check_logs(state, path)
    if restore_rng:
        check_rng_state(state["rng"], path)


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``meta`` dict a Trainer checkpoint was saved with, after verifying the file; changes nothing.

    For callers that must decide whether a checkpoint belongs to them before building anything
    from it (the recipes compare it with their own fields).

    Raises:
        FileNotFoundError, IsADirectoryError: as ``load_safely``.
        ValueError: a damaged file (as ``load_safely``), or not a Trainer checkpoint of this format.
    """
    source = Path(path) if isinstance(path, (str, os.PathLike)) else path
    state = load_safely(source)
    if (
        not isinstance(state, dict)
        or state.get("format") != FORMAT
        or set(state) != KEYS
    ):
        raise ValueError(f"{source} is not a Trainer checkpoint of format {FORMAT}")
    if not isinstance(state["meta"], dict):
        raise ValueError(
            f"{source}: 'meta' must be a dict, got {type(state['meta']).__name__}"
        )
    return state["meta"]


def check_meta(
    saved: dict[str, Any], wanted: dict[str, Any] | None, path: Path
) -> None:
    """ValueError naming ``path`` unless a checkpoint's meta equals the run's.

    ``meta["recipe"]`` (what kind of run wrote the file) is compared first, then every other
    value, nested dicts (a recipe's ``fields``) key by key: a run resumes only from a
    checkpoint written by the same recipe with the same settings.
    """
    wanted = wanted or {}
    if saved.get("recipe") != wanted.get("recipe"):
        raise ValueError(
            f"{path} is a checkpoint of {saved.get('recipe')!r}, not of "
            f"{wanted.get('recipe')!r}; choose another checkpoint path"
        )
    old, new = _flat(saved), _flat(wanted)
    differing = sorted(
        key for key in set(old) | set(new) if old.get(key) != new.get(key)
    )
    if differing:
        shown = ", ".join(
            f"{key}: {old.get(key)!r} -> {new.get(key)!r}" for key in differing[:5]
        )
        raise ValueError(
            f"{path} was written by a different recipe ({shown}); resume with the same recipe"
        )


def _flat(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` with the keys of nested dicts lifted to the top (one level)."""
    flat: dict[str, Any] = {}
    for key, value in meta.items():
        flat.update(value if isinstance(value, dict) else {key: value})
    return flat


def _shape(value: torch.Tensor) -> tuple[int, ...]:
    return tuple(value.shape)


def _check_model_state(
    saved: Any, expected: Mapping[str, torch.Tensor], path: Path
) -> None:
    if not isinstance(saved, dict) or not all(isinstance(key, str) for key in saved):
        raise ValueError(f"{path}: the model state is not a dict of named tensors")
    problems = []
    missing = [key for key in expected if key not in saved]
    extra = [key for key in saved if key not in expected]
    if missing:
        problems.append(
            f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}"
        )
    if extra:
        problems.append(
            f"unexpected keys {extra[:5]}{' ...' if len(extra) > 5 else ''}"
        )
    for key, tensor in expected.items():
        if key not in saved:
            continue
        value = saved[key]
        if not isinstance(value, torch.Tensor):
            problems.append(f"{key!r} is a {type(value).__name__}, not a tensor")
        elif value.shape != tensor.shape:
            problems.append(
                f"{key!r} has shape {_shape(value)} in the file, {_shape(tensor)} in the model"
            )
        elif value.dtype != tensor.dtype:
            problems.append(
                f"{key!r} has dtype {value.dtype} in the file, {tensor.dtype} in the model"
            )
    if problems:
        shown = "; ".join(problems[:6]) + (
            f"; and {len(problems) - 6} more" if len(problems) > 6 else ""
        )
        raise ValueError(f"{path}: the model state does not fit this model: {shown}")


def _check_optimizer_state(
    saved: Any, optim: torch.optim.Optimizer, path: Path
) -> None:
    name = type(optim).__name__
    if saved is None:
        raise ValueError(
            f"{path} holds no optim state, but this Trainer has an optimizer ({name})"
        )
    if not isinstance(saved, dict) or set(saved) != {"class", "state", "group_sizes"}:
        raise ValueError(f"{path}: the optim entry is not an optimizer state")
    if saved["class"] != name:
        raise ValueError(
            f"{path} holds the state of a {saved['class']} optimizer, but this Trainer's optimizer is a {name}"
        )
    sizes = [len(group["params"]) for group in optim.param_groups]
    if saved["group_sizes"] != sizes:
        raise ValueError(
            f"{path}: the optimizer's parameter groups differ: {_groups(saved['group_sizes'])} in the file, "
            f"{_groups(sizes)} in this Trainer's {name}"
        )
    inner = saved["state"]
    if not isinstance(inner, dict) or set(inner) != {"state", "param_groups"}:
        raise ValueError(f"{path}: the {name} state is not an optimizer state_dict")
    groups = inner["param_groups"]
    if (
        not isinstance(groups, list)
        or [len(group.get("params", ())) for group in groups] != sizes
    ):
        raise ValueError(
            f"{path}: the {name} state's parameter groups do not match its recorded sizes {sizes}"
        )
    # Every setting the optimizer class defines must be there (schedulers add their own, e.g. initial_lr).
    for index, group in enumerate(groups):
        missing = sorted(set(optim.defaults) - set(group))
        if missing:
            raise ValueError(
                f"{path}: parameter group {index} of the {name} state lacks the settings {missing}"
            )
    # Per-parameter state (momentum buffers, Adam's moments) must have each parameter's shape.
    params = [p for group in optim.param_groups for p in group["params"]]
    position = {
        saved_id: i
        for i, saved_id in enumerate(pid for group in groups for pid in group["params"])
    }
    for saved_id, values in inner["state"].items():
        if saved_id not in position or not isinstance(values, dict):
            raise ValueError(
                f"{path}: the {name} state refers to parameter {saved_id!r}, which its groups do not hold"
            )
        param = params[position[saved_id]]
        for key, value in values.items():
            if (
                isinstance(value, torch.Tensor)
                and value.dim() > 0
                and value.shape != param.shape
            ):
                raise ValueError(
                    f"{path}: the {name} state {key!r} of parameter {position[saved_id]} has shape "
                    f"{_shape(value)}, the parameter {_shape(param)}"
                )


def _groups(sizes: list[int]) -> str:
    return f"{len(sizes)} group(s) of {sizes} parameters"


def _check_part_state(label: str, saved: Any, part: Any | None, path: Path) -> None:
    if part is None:
        if saved is not None:
            kind = (
                saved.get("class") if isinstance(saved, dict) else type(saved).__name__
            )
            raise ValueError(
                f"{path} holds {label} state ({kind}), but this Trainer has no {label}"
            )
        return
    name = type(part).__name__
    if saved is None:
        raise ValueError(
            f"{path} holds no {label} state, but this Trainer has a {label} ({name})"
        )
    if (
        not isinstance(saved, dict)
        or set(saved) != {"class", "state"}
        or not isinstance(saved["state"], dict)
    ):
        raise ValueError(f"{path}: the {label} entry is not a {label} state")
    if saved["class"] != name:
        raise ValueError(
            f"{path} holds the state of a {saved['class']} {label}, but this Trainer's {label} is a {name}"
        )


def _check_logs(state: dict[str, Any], path: Path) -> None:
    def numbers(value: Any, kind: type | tuple[type, ...]) -> bool:
        return isinstance(value, list) and all(
            isinstance(item, kind) and not isinstance(item, bool) for item in value
        )

    epoch, step = state["epoch"], state["global_step"]
    for name, value in (("epoch", epoch), ("global_step", step)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{path}: {name} must be an int >= 0, got {value!r}")
    # One valid_log entry per epoch; one train_log entry per step (fewer only when a distributed
    # run was interrupted before its last chunk of metrics reached the host).
    for name, keys in (("train_log", TRAIN_LOG_KEYS), ("valid_log", VALID_LOG_KEYS)):
        log = state[name]
        if not isinstance(log, dict) or set(log) != set(keys):
            raise ValueError(
                f"{path}: {name} must be a dict with the keys {list(keys)}"
            )
        lengths = {len(log[key]) if isinstance(log[key], list) else -1 for key in keys}
        length = lengths.pop()
        if lengths or not all(numbers(log[key], (int, float)) for key in keys):
            raise ValueError(f"{path}: {name} must hold lists of numbers of one length")
        if (name == "valid_log" and length != epoch) or (
            name == "train_log" and length > step
        ):
            limit = (
                f"{epoch} (the epoch count)"
                if name == "valid_log"
                else f"at most {step} (the step count)"
            )
            raise ValueError(f"{path}: {name} holds {length} entries, expected {limit}")
    ends = state["valid_log"]["step"]
    if not numbers(ends, int) or any(end > step for end in ends):
        raise ValueError(
            f"{path}: valid_log['step'] must hold {epoch} step counts <= {step}"
        )
