"""Train any ``idx -> logits`` module on seeded batches, within a budget, with honest accounting.

The trainer knows nothing about architectures: it takes an ``nn.Module``
mapping a LongTensor (B, T) to logits (B, T, V), a batch function
``batches(i) -> (inputs, targets)`` that is a pure function of the index (so
resuming needs no sampler state), and optionally the forward FLOPs per token
from the architecture's analytic count (training FLOPs = 3 x forward).

AdamW (decoupled weight decay on matrices only) with linear warmup and then a
cosine or warmup-stable-decay (WSD) schedule, gradient clipping, gradient
accumulation, bf16 autocast, a budget in steps, tokens or wall-clock seconds,
checkpoint/resume (model, optimizer, RNG, step: a resumed run equals an
uninterrupted one), and NaN/divergence detection that stops the run with a
status. Under ``accelerate launch`` with several processes it trains data
parallel through :mod:`accelerate` (``accelerate="on"`` also takes that path in a
single process); a plain run never touches it.

Devices: ``device`` is ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``
(:mod:`cambrian.scaling.device`). On CUDA, precision ``auto`` trains in bf16 autocast,
the model's fused kernels run where installed (:mod:`cambrian.architectures.kernels`),
and ``compile=True`` wraps each block in ``torch.compile``. The result records where and
how the run trained (:class:`~cambrian.scaling.device.Runtime`). A model with
``computes_loss`` (Cambrian's) is called as ``model(x, targets=y)`` so that its head and
loss can run as one fused kernel.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cambrian.architectures import kernels
from cambrian.scaling.device import check_device, resolve_device, runtime
from cambrian.scaling.synthetic import IGNORE

Batches = Callable[[int], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class TrainConfig:
    lr: float = 3e-3
    min_lr_frac: float = 0.1  # the schedule ends at lr * min_lr_frac
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = 20
    schedule: Literal["cosine", "wsd", "constant"] = "cosine"
    decay_frac: float = 0.2  # WSD: the last fraction of the run decays linearly
    grad_clip: float | None = 1.0
    grad_accum: int = 1  # micro-batches per optimizer step
    max_steps: int | None = None  # budgets: the first one reached ends the run
    max_tokens: int | None = None
    max_seconds: float | None = None
    precision: Literal["fp32", "bf16", "auto"] = "fp32"  # auto: bf16 on CUDA, or CPU from 5M params
    threads: int | None = None  # torch.set_num_threads for this run
    device: str = "auto"  # auto: cuda when present; cpu, cuda, cuda:N
    compile: bool = False  # torch.compile each block (the model's ``layers``, else the whole model)
    seed: int = 0  # model init is the caller's; this seeds dropout-like RNG use during training
    log_every: int = 10
    checkpoint_path: str | None = None  # resume from it when present; save every checkpoint_every
    checkpoint_every: int | None = None
    divergence_factor: float = 2.5  # stop when the smoothed loss exceeds this x its best (after warmup)
    accelerate: Literal["auto", "on", "off"] = "auto"  # auto: when launched with WORLD_SIZE > 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "device", check_device(self.device))

    def total_steps(self, tokens_per_step: int) -> int | None:
        """The run's length in steps when a step or token budget fixes it (None: time only)."""
        candidates = [s for s in (self.max_steps,
                                  math.ceil(self.max_tokens / tokens_per_step) if self.max_tokens else None)
                      if s is not None]
        return min(candidates) if candidates else None


def lr_at(config: TrainConfig, step: int, progress: float) -> float:
    """Learning rate for ``step`` (0-based) at run ``progress`` in [0, 1]."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    lo = config.lr * config.min_lr_frac
    if config.schedule == "constant":
        return config.lr
    if config.schedule == "cosine":
        return lo + (config.lr - lo) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    if config.schedule == "wsd":
        start = 1.0 - config.decay_frac
        if progress <= start:
            return config.lr
        return config.lr - (config.lr - lo) * min(1.0, (progress - start) / config.decay_frac)
    raise ValueError(f"unknown schedule {config.schedule!r}")


@dataclass
class TrainResult:
    status: Literal["completed", "nan", "diverged"]
    stop_reason: str  # which budget ended it, or why it was stopped
    steps: int
    tokens: int
    flops: float  # training FLOPs (3 x forward per token x tokens); 0 without flops_per_token
    wall_s: float
    tokens_per_s: float
    train_loss: float  # mean of the last logged window
    history: list[tuple[int, float]] = field(default_factory=list)  # (step, loss) every log_every
    runtime: dict[str, Any] = field(default_factory=dict)  # device, device_name, dtype, kernels, ...

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def use_bf16(precision: str, device: torch.device, n_params: int) -> bool:
    if precision == "bf16":
        return True
    if precision == "auto":
        if device.type == "cuda":
            return torch.cuda.is_bf16_supported()
        return n_params >= 5_000_000  # measured on CPU: +4% at 0.9M params, 1.5x at 10.8M
    return False


def param_groups(model: nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
    """Weight decay on matrices (dim >= 2) only, as in nanoGPT."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over :func:`param_groups`."""
    groups = param_groups(model, config)
    # The fused kernel on CPU too: one pass over all parameters instead of torch's per-tensor
    # default there, about 1.5 ms of a 65 ms step at the compose proxy (bench/optimizer_step.py).
    fused = next(model.parameters()).device.type in ("cuda", "cpu")
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, fused=fused)


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    # logits (B, T, V), targets (B, T) with IGNORE at unscored positions
    return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=IGNORE)


def _accelerator(config: TrainConfig, bf16: bool, device: torch.device):
    want = config.accelerate == "on" or (config.accelerate == "auto" and int(os.environ.get("WORLD_SIZE", "1")) > 1)
    if not want:
        return None
    from accelerate import Accelerator

    return Accelerator(mixed_precision="bf16" if bf16 else "no", cpu=device.type == "cpu")


def compile_blocks(model: nn.Module) -> bool:
    """``torch.compile`` each block in place (a model's ``layers``), else the whole model."""
    blocks = getattr(model, "layers", None)
    if isinstance(blocks, nn.ModuleList) and len(blocks):
        for block in blocks:
            block.compile()
    else:
        model.compile()
    return True


def step_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, computes_loss: bool) -> torch.Tensor:
    """The training loss of one micro-batch: the model's own (fusable) loss when it has one."""
    if computes_loss:
        return model(x, targets=y, ignore_index=IGNORE)
    return lm_loss(model(x), y)


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # atomic: a crash mid-save leaves the previous checkpoint


def train(model: nn.Module, batches: Batches, config: TrainConfig, *,
          flops_per_token: float | None = None) -> TrainResult:
    """Train ``model`` in place until a budget is spent or the run fails; see :class:`TrainConfig`."""
    if config.max_steps is None and config.max_tokens is None and config.max_seconds is None:
        raise ValueError("give a budget: max_steps, max_tokens or max_seconds")
    if config.threads:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    n_params = sum(p.numel() for p in model.parameters())
    bf16 = use_bf16(config.precision, device, n_params)
    model.to(device)
    computes_loss = bool(getattr(model, "computes_loss", False))
    compiled = compile_blocks(model) if config.compile else False
    optimizer = make_optimizer(model, config)
    acc = _accelerator(config, bf16, device)
    rank, world = 0, 1
    if acc is not None:
        model, optimizer = acc.prepare(model, optimizer)
        device, rank, world = acc.device, acc.process_index, acc.num_processes

    x0, _ = batches(0)
    tokens_per_step = int(x0.size) * config.grad_accum * world  # every input token is computed on
    total = config.total_steps(tokens_per_step)
    step, tokens, elapsed, history = 0, 0, 0.0, []
    ema, best_ema = None, math.inf
    torch.manual_seed(config.seed)

    ckpt = Path(config.checkpoint_path) if config.checkpoint_path else None
    if ckpt is not None and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        (acc.unwrap_model(model) if acc else model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"].cpu())  # map_location put it on the device; CPU RNG state
        step, tokens, elapsed, history = state["step"], state["tokens"], state["elapsed"], state["history"]
        ema, best_ema = state["ema"], state["best_ema"]

    def checkpoint() -> None:
        if ckpt is None or rank != 0:
            return
        _save_checkpoint(ckpt, {"model": (acc.unwrap_model(model) if acc else model).state_dict(),
                                "optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(),
                                "step": step, "tokens": tokens, "elapsed": elapsed, "history": history,
                                "ema": ema, "best_ema": best_ema, "config": asdict(config)})

    kernels.reset_used()
    model.train()
    status, reason, window = "completed", "", []
    t0 = time.perf_counter() - elapsed
    while True:
        elapsed = time.perf_counter() - t0
        if total is not None and step >= total:
            reason = "max_steps" if config.max_steps is not None and step >= config.max_steps else "max_tokens"
            break
        if config.max_seconds is not None and elapsed >= config.max_seconds:
            reason = "max_seconds"
            break
        progress = max(step / total if total else 0.0,
                       elapsed / config.max_seconds if config.max_seconds else 0.0)
        lr = lr_at(config, step, progress)
        for group in optimizer.param_groups:
            group["lr"] = lr

        loss_sum = 0.0
        for micro in range(config.grad_accum):
            x, y = batches((step * world + rank) * config.grad_accum + micro)
            x = torch.from_numpy(x).to(device, non_blocking=True)
            y = torch.from_numpy(y).to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16 and acc is None):
                loss = step_loss(model, x, y, computes_loss) / config.grad_accum
            acc.backward(loss) if acc else loss.backward()
            loss_sum += loss.detach()
        if acc is not None:
            loss_sum = acc.reduce(loss_sum, reduction="mean")
        loss_val = float(loss_sum)
        if not math.isfinite(loss_val):
            status, reason = "nan", f"loss is {loss_val} at step {step}"
            break
        if config.grad_clip:
            clip = acc.clip_grad_norm_ if acc else torch.nn.utils.clip_grad_norm_
            gnorm = float(clip(model.parameters(), config.grad_clip))
            if not math.isfinite(gnorm):
                status, reason = "nan", f"gradient norm is {gnorm} at step {step}"
                break
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        tokens += tokens_per_step
        window.append(loss_val)

        ema = loss_val if ema is None else 0.9 * ema + 0.1 * loss_val
        if step > config.warmup_steps:
            best_ema = min(best_ema, ema)
            if ema > config.divergence_factor * best_ema:
                status, reason = "diverged", (f"smoothed loss {ema:.3f} > {config.divergence_factor} x "
                                              f"best {best_ema:.3f} at step {step}")
                break
        if step % config.log_every == 0:
            history.append((step, float(np.mean(window))))
            window = []
        if config.checkpoint_every and step % config.checkpoint_every == 0:
            elapsed = time.perf_counter() - t0
            checkpoint()

    elapsed = time.perf_counter() - t0
    if window:
        history.append((step, float(np.mean(window))))
    if status == "completed":
        checkpoint()
    train_loss = history[-1][1] if history else math.nan
    if acc is not None:
        model = acc.unwrap_model(model)
    return TrainResult(status=status, stop_reason=reason, steps=step, tokens=tokens,
                       flops=3.0 * flops_per_token * tokens if flops_per_token else 0.0,
                       wall_s=elapsed, tokens_per_s=tokens / elapsed if elapsed > 0 else 0.0,
                       train_loss=train_loss, history=history,
                       runtime=runtime(device, bf16, kernels.used(), compiled, world).model_dump())


# ----------------------------------------------------------------------------- evaluation

@torch.no_grad()
def mean_loss(model: nn.Module, windows, device: str | torch.device = "auto",
              bf16: bool = False) -> tuple[float, int]:
    """Mean cross-entropy (nats per scored token) over ``(inputs, targets)`` batches, and the count."""
    device = resolve_device(device) if isinstance(device, str) else device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for x, y in windows:
        x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        n = int((y != IGNORE).sum())
        total += float(lm_loss(logits, y)) * n
        count += n
    model.train(was_training)
    return total / max(1, count), count


@torch.no_grad()
def accuracy(model: nn.Module, inputs: np.ndarray, targets: np.ndarray, batch_size: int = 256,
             device: str | torch.device = "auto") -> float:
    """Fraction of scored positions where the argmax prediction equals the target."""
    device = resolve_device(device) if isinstance(device, str) else device
    was_training = model.training
    model.eval()
    right, count = 0, 0
    for b in range(0, len(inputs), batch_size):
        x = torch.from_numpy(inputs[b:b + batch_size]).to(device)
        y = torch.from_numpy(targets[b:b + batch_size]).to(device)
        mask = y != IGNORE
        pred = model(x).argmax(-1)
        right += int((pred[mask] == y[mask]).sum())
        count += int(mask.sum())
    model.train(was_training)
    return right / max(1, count)
