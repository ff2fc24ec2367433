"""Does bf16 autocast help CPU training? fp32 vs bf16, side by side, same model and batches.

Trains the Llama-style reference spec at two widths for a fixed number of steps
in each precision and prints training tokens/s and the bf16/fp32 ratio.

    .venv/bin/python bench/bf16.py --steps 20
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from cambrian.architectures import build_model, count, reference_spec
from cambrian.scaling.trainer import TrainConfig, train


def tokens_per_s(spec, precision: str, steps: int, batch: int, seq: int, threads: int) -> float:
    def batches(i):
        x = np.random.default_rng([0, i]).integers(0, 256, size=(batch, seq + 1))
        return x[:, :-1], x[:, 1:]

    model = build_model(spec, seed=0)
    train(model, batches, TrainConfig(max_steps=2, precision=precision, threads=threads))  # warm up
    r = train(model, batches, TrainConfig(max_steps=steps, precision=precision, threads=threads, warmup_steps=1),
              flops_per_token=count(spec, seq).flops_per_token)
    return r.tokens_per_s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    line = []
    for d, layers, batch in ((128, 4, 16), (384, 6, 8)):
        spec = reference_spec("llama", d_model=d, n_layers=layers, max_seq_len=256)
        fp32 = tokens_per_s(spec, "fp32", args.steps, batch, 256, args.threads)
        bf16 = tokens_per_s(spec, "bf16", args.steps, batch, 256, args.threads)
        params = count(spec).params / 1e6
        print(f"d_model {d} x {layers} blocks ({params:.1f}M params): fp32 {fp32:,.0f} tok/s, "
              f"bf16 {bf16:,.0f} tok/s, ratio {bf16 / fp32:.2f}")
        line.append(f"{params:.1f}M={bf16 / fp32:.2f}x")
    print("RESULT bf16/fp32 training tokens/s: " + " ".join(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
