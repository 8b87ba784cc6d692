"""The training engine: mode switching, the Trainer, callbacks and checkpoints.

Modules: ``core`` (TrainerCore, the loop on one screen), ``trainer`` (Trainer: the core plus
precision, processes, CUDA graphs, chunked metrics, checkpoints and resume), ``arguments`` (the
Trainer's argument checks), ``modes`` (eval_context), ``callbacks`` (Callback, EarlyStopping,
LRRangeTest, SchedulerStatsRecorder, StopAfter), ``metrics`` (per-step metrics kept on the device),
``history`` (logs as a DataFrame), ``checkpoint`` (checked paths, atomic save, verified load,
RNG states), ``precision`` (autocast and GradScaler), ``cuda_graph`` (captured training step),
``distributed`` (joining a torchrun process group, DDP, sharding), ``interrupts`` (Ctrl-C held
until a step is counted), ``progress`` (the tqdm bar).
"""

from nbhelpers.train.callbacks import (
    Callback,
    EarlyStopping,
    LRRangeTest,
    SchedulerStatsRecorder,
    StopAfter,
)
from nbhelpers.train.checkpoint import check_checkpoint_path
from nbhelpers.train.core import TrainerCore
from nbhelpers.train.distributed import join_process_group
from nbhelpers.train.modes import eval_context
from nbhelpers.train.trainer import Trainer

__all__ = [
    "Callback",
    "EarlyStopping",
    "LRRangeTest",
    "SchedulerStatsRecorder",
    "StopAfter",
    "Trainer",
    "TrainerCore",
    "check_checkpoint_path",
    "eval_context",
    "join_process_group",
]
