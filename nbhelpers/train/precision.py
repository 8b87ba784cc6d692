"""Mixed precision: which autocast context and which gradient scaler a precision setting means."""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager

import torch

PRECISIONS = ("32", "bf16", "16")


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision ``precision`` means on ``device``: "auto" becomes ``fast_precision``.

    "32": everywhere. "bf16": autocast to bfloat16 on CUDA and on the CPU. "16": autocast to
    float16 with a GradScaler, CUDA only (float16 gradients underflow without loss scaling).

    Raises:
        ValueError: an unknown precision, or one ``device`` cannot run.
    """
    if precision == "auto":
        return fast_precision(device)
    if precision not in PRECISIONS:
        choices = ", ".join(("auto", *PRECISIONS))
        raise ValueError(f"precision={precision!r}: use one of {choices}")
    if precision == "bf16" and device.type not in ("cuda", "cpu"):
        raise ValueError(f"precision='bf16' runs on cuda or cpu, not on {device.type}")
    if precision == "16" and device.type != "cuda":
        raise ValueError(f"precision='16' needs a CUDA device, got {device.type}")
    return precision


def fast_precision(device: torch.device | str) -> str:
    """ "bf16" where bfloat16 autocast is fast on ``device``, else "32".

    Fast: CUDA devices with bfloat16 support, and CPUs with AVX-512 BF16 or AMX instructions
    (bfloat16 matrix multiplication in hardware; on this book's development CPU it halves the
    time of a ResNet18 training step). Elsewhere bfloat16 would be emulated, slower than float32.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "32"
    if device.type == "cpu":
        probes = [
            getattr(torch.cpu, name, None)
            for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        ]
        return (
            "bf16" if any(probe is not None and probe() for probe in probes) else "32"
        )
    return "32"


def autocast(
    precision: str, device: torch.device, cache_enabled: bool = True
) -> AbstractContextManager[object]:
    """The context the forward pass and the loss run in: autocast for "bf16"/"16", else nothing.

    ``cache_enabled=False`` is required inside CUDA-graph capture (PyTorch's CUDA graphs notes).
    """
    if precision == "32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype, cache_enabled=cache_enabled)


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler | None:
    """A GradScaler for float16 training, None otherwise.

    Note: ``GradScaler.step`` reads its inf/NaN flag on the host, one sync per step, unless the
    optimizer takes the scaling into its own kernels (``fused=True`` Adam/AdamW/SGD).
    """
    if precision != "16":
        return None
    return torch.amp.GradScaler(device.type)
