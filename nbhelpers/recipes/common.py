"""What the three recipes share: the profile table lookup and the identity of a run.

A recipe is a frozen dataclass (``MnistRecipe``, ``HistopathologyRecipe``, ``NamesRecipe``),
checked when it is built, with the same three steps:

- ``XRecipe.for_profile(profile=None, **overrides)``: the sizes of a run profile (the table
  ``SIZES`` of the recipe class: "quick" and "full"), then the overrides;
- ``recipe.prepare()``: the data, with ``.source`` saying where it came from;
- ``recipe.train(data, device)``: the model, the optimiser, the schedule, the batches and the
  Trainer, in one short method the chapter shows whole. It returns the Trainer(s). With
  ``checkpoint``, the Trainer writes a checkpoint after every epoch and resumes from an
  existing one (``Trainer.run``); the checkpoint's meta is the recipe's ``identity()``, so a
  checkpoint of another recipe is refused before anything changes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar

import torch

from nbhelpers.device import PROFILES, profile
from nbhelpers.train.precision import PRECISIONS, fast_precision

RecipeT = TypeVar("RecipeT", bound="ProfiledRecipe")
PRECISION_CHOICES = ("auto", *PRECISIONS)


class ProfiledRecipe:
    """Base of the recipe dataclasses: the profile table, the identity, "auto" resolved."""

    SIZES: ClassVar[dict[str, dict[str, Any]]]

    @classmethod
    def for_profile(
        cls: type[RecipeT], run_profile: str | None = None, **overrides: Any
    ) -> RecipeT:
        """The recipe with the sizes of ``SIZES[run_profile]``, then ``overrides`` applied.

        Args:
            run_profile: "quick" or "full"; None means ``nbhelpers.device.profile()``
                (``NBHELPERS_PROFILE``, else "full" with an accelerator and "quick" without).
            overrides: any field of the recipe, e.g. ``batch_size=256``.

        Raises:
            ValueError: an unknown profile, an unknown field, or a value the recipe refuses.
        """
        chosen = run_profile if run_profile is not None else profile()
        if chosen not in PROFILES:
            listed = ", ".join(PROFILES)
            raise ValueError(f"unknown profile {chosen!r}; use one of {listed}")
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(
                f"unknown {cls.__name__} field(s) {unknown}; known: {sorted(known)}"
            )
        return cls(**{**cls.SIZES[chosen], **overrides})

    def identity(self, **extra: Any) -> dict[str, Any]:
        """What a checkpoint of this recipe records: its class, every field, and ``extra``."""
        fields = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {"recipe": type(self).__name__, "fields": fields, **extra}

    def resolved(self: RecipeT, device: torch.device | str) -> RecipeT:
        """The recipe with ``precision="auto"`` replaced by what is fast on ``device``."""
        if getattr(self, "precision", None) != "auto":
            return self
        fast = fast_precision(device)
        return dataclasses.replace(self, precision=fast)  # type: ignore[type-var]
