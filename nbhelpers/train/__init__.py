"""The training engine: mode switching, the Trainer, callbacks and checkpoints.

Modules: ``modes`` (eval_context), ``trainer`` (Trainer), ``callbacks`` (Callback, EarlyStopping,
SchedulerStatsRecorder), ``metrics`` (per-step metrics kept on the device), ``history`` (logs as a
DataFrame), ``checkpoint`` (checked paths, atomic save, verified load, RNG states), ``precision`` (autocast
and GradScaler), ``cuda_graph`` (captured training step), ``distributed`` (joining a torchrun
process group, DDP, sharding), ``progress`` (the tqdm bar).
"""

from nbhelpers.train.callbacks import Callback, EarlyStopping, SchedulerStatsRecorder
from nbhelpers.train.checkpoint import check_checkpoint_path
from nbhelpers.train.distributed import join_process_group
from nbhelpers.train.modes import eval_context
from nbhelpers.train.trainer import Trainer

__all__ = [
    "Callback",
    "EarlyStopping",
    "SchedulerStatsRecorder",
    "Trainer",
    "check_checkpoint_path",
    "eval_context",
    "join_process_group",
]
