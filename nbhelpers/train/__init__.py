"""The training engine: mode switching, the Trainer, callbacks and checkpoints."""

from nbhelpers.train.modes import eval_context

__all__ = ["eval_context"]
