"""The trainer's options, shared by the evaluators that train a spec (``lm``, ``synthetic``).

Each key overrides :class:`cambrian.scaling.trainer.TrainConfig`'s field of the same
name; an unset key (null) leaves the evaluator's default. Declared here, not derived
from TrainConfig, because plugin modules must import without torch.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from cambrian import Options
from cambrian.scaling.device import DeviceName


class TrainingOptions(Options):
    max_steps: int | None = Field(None, ge=1, description="optimizer steps (the first budget reached ends the run)")
    train_tokens: int | None = Field(None, ge=1, description="training tokens (TrainConfig.max_tokens; the "
                                     "compose evaluator's name)")
    max_seconds: float | None = Field(None, gt=0, description="training wall-clock seconds")
    lr: float | None = Field(None, gt=0)
    min_lr_frac: float | None = Field(None, ge=0, le=1)
    warmup_steps: int | None = Field(None, ge=0)
    schedule: Literal["cosine", "wsd", "constant"] | None = None
    decay_frac: float | None = Field(None, ge=0, le=1)
    weight_decay: float | None = Field(None, ge=0)
    grad_clip: float | None = Field(None, gt=0)
    grad_accum: int | None = Field(None, ge=1)
    precision: Literal["fp32", "bf16", "auto"] | None = None
    threads: int | None = Field(None, ge=1)
    device: DeviceName | None = Field(None, description="auto, cpu, cuda or cuda:N (null: auto)")
    compile: bool | None = Field(None, description="torch.compile the model")

    def train_kwargs(self, **defaults: Any) -> dict[str, Any]:
        """The TrainConfig keyword arguments: ``defaults`` overlaid with every key that is set;
        a run with no budget set gets ``defaults``' budget."""
        given = {k: getattr(self, k) for k in TrainingOptions.model_fields if getattr(self, k) is not None}
        if "train_tokens" in given:
            given["max_tokens"] = given.pop("train_tokens")
        if any(k in given for k in ("max_steps", "max_tokens", "max_seconds")):
            defaults = {k: v for k, v in defaults.items() if k not in ("max_steps", "max_tokens", "max_seconds")}
        return {**defaults, **given}
