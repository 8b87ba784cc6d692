"""The training engine: mode switching, the Trainer, callbacks and checkpoints.

Modules: ``modes`` (eval_context), ``trainer`` (Trainer), ``callbacks`` (Callback, EarlyStopping,
SchedulerStatsRecorder), ``metrics`` (per-step metrics kept on the device), ``history`` (logs as a
DataFrame), ``checkpoint`` (RNG states, atomic save, safe load), ``precision`` (autocast and
GradScaler), ``cuda_graph`` (captured training step), ``distributed`` (torchrun, DDP, sharding),
``progress`` (the tqdm bar).
"""

from nbhelpers.train.callbacks import Callback, EarlyStopping, SchedulerStatsRecorder
from nbhelpers.train.modes import eval_context
from nbhelpers.train.trainer import Trainer

__all__ = ["Callback", "EarlyStopping", "SchedulerStatsRecorder", "Trainer", "eval_context"]
