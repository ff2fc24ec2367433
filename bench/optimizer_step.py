"""One training step at the default compose proxy: the trainer's AdamW against torch's CPU default.

Each reference of the default campaign (d_model 64, 8 residual layers, batch 8 x 128, byte
vocabulary, as the compose domain builds them) trains two copies from the same init on the same batches, in this one process, steps
alternating: forward + backward + gradient clip + AdamW step, as ``cambrian.scaling.trainer``
runs it. One copy's optimizer is ``make_optimizer``'s (fused AdamW), the other torch's default
on CPU (``foreach=None``: the per-tensor loop). Times are the thread's CPU time of the whole
step and of the optimizer step alone; the ratio is the median over pairs of default / trainer.
The last step's loss of both copies shows they train alike (the two implementations round
differently, so the copies drift apart by rounding, as two runs on different hardware would).

    .venv/bin/python bench/optimizer_step.py [--steps 60] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from cambrian.architectures import ArchSpec, build_model
from cambrian.plugins.domains.compose.domain import ComposeDomain
from cambrian.scaling.trainer import TrainConfig, make_optimizer, param_groups


def torch_default(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """make_optimizer's groups with torch's own choice of implementation."""
    return torch.optim.AdamW(param_groups(model, config), lr=config.lr, betas=config.betas)


def step(model, optimizer, x, y) -> tuple[float, float, float]:
    """Thread CPU seconds of the whole step and of the optimizer's part, and the loss."""
    t0 = time.thread_time()
    loss = model(x, targets=y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    t1 = time.thread_time()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    t2 = time.thread_time()
    return t2 - t0, t2 - t1, float(loss.detach())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    config = TrainConfig(lr=3e-3)
    print(f"{'reference':10} {'params':>8} {'step ms (default / trainer)':>28} {'ratio':>6} {'IQR':>11} "
          f"{'AdamW ms (default / trainer)':>29} {'last loss (default / trainer)':>30}")
    for name, cand in ComposeDomain(d_model=64, n_layers=8, seq_len=128).baselines().items():
        trainer_model = build_model(ArchSpec.from_dict(cand.content), seed=0)
        default_model = copy.deepcopy(trainer_model)
        opt_trainer, opt_default = make_optimizer(trainer_model, config), torch_default(default_model, config)
        gen = torch.Generator().manual_seed(0)
        rows = []
        for i in range(args.steps + 5):
            x, y = (torch.randint(0, 256, (8, 128), generator=gen) for _ in range(2))
            pair = (step(default_model, opt_default, x, y), step(trainer_model, opt_trainer, x, y))
            if i >= 5:  # warm-up steps (allocator, first kernels) are not timed
                rows.append(pair)
        ratios = [d[0] / t[0] for d, t in rows]
        q = statistics.quantiles(ratios, n=4)
        med = lambda xs: 1000 * statistics.median(xs)
        n_params = sum(p.numel() for p in trainer_model.parameters())
        print(f"{name:10} {n_params:>8,} {med([d[0] for d, _ in rows]):>13.1f} / {med([t[0] for _, t in rows]):<12.1f} "
              f"{statistics.median(ratios):>5.3f}x {q[0]:.3f}-{q[2]:.3f} "
              f"{med([d[1] for d, _ in rows]):>14.2f} / {med([t[1] for _, t in rows]):<12.2f} "
              f"{rows[-1][0][2]:>15.4f} / {rows[-1][1][2]:.4f}")


if __name__ == "__main__":
    main()
