"""Model FLOPs utilisation of the llama and hybrid references at GPT-3 Small size, bf16, on a GPU.

Each model (d_model 768, 12 blocks, GPT-2's padded vocabulary 50,304: about 125M parameters for
llama) trains with fused AdamW in bf16 autocast on the same random batches, Cambrian's models
through ``model(x, targets=y)`` (the trainer's call: its fused kernels where installed, listed in
the output); timed steps alternate between the models so load hits all alike. A nanoGPT of the
same dims is the side-by-side reference.

MFU = training FLOPs per token (``count()``: 3 x the forward's matmul and attention FLOPs) x
tokens/s / the card's bf16 dense peak, looked up by the device's name (:data:`BF16_DENSE_PEAK`;
an unknown card uses the measured bf16 matmul peak and says so). The measured matmul peak is
printed beside it.

    python bench/gpu_mfu.py [--steps 10] [--batch 16] [--seq 1024] [--compile]
    python bench/gpu_mfu.py --device cpu --small      # the plumbing, on tiny sizes
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_throughput import NanoGPT, matmul_peak, sync

from cambrian.architectures import build_model, count, kernels, reference_spec

# bf16 dense tensor-core peaks (no sparsity), FLOP/s, from NVIDIA's data sheets; the first name
# found in torch.cuda.get_device_name() wins, so the more specific names come first.
BF16_DENSE_PEAK: list[tuple[str, float]] = [
    ("GH200", 989.4e12), ("H200", 989.4e12), ("H100 NVL", 835.6e12), ("H100 PCIe", 756.5e12),
    ("H100", 989.4e12), ("H800", 989.4e12), ("B200", 2250e12), ("B100", 1750e12),
    ("A100", 312e12), ("A800", 312e12), ("L40S", 362.1e12), ("L40", 181.05e12), ("L4", 121e12),
    ("A10G", 70e12), ("A10", 125e12), ("RTX 6000 Ada", 364.2e12), ("A6000", 154.8e12),
]


def card_peak(name: str) -> tuple[str, float] | None:
    for key, peak in BF16_DENSE_PEAK:
        if key in name:
            return key, peak
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=1024)
    ap.add_argument("--compile", action="store_true", help="torch.compile each block (and nanoGPT whole)")
    ap.add_argument("--small", action="store_true", help="tiny dims: try the script without a GPU")
    args = ap.parse_args()
    device = torch.device(args.device)
    d, blocks, vocab = (64, 2, 256) if args.small else (768, 12, 50304)
    seq, batch = (64, 2) if args.small else (args.seq, args.batch)
    specs = {name: reference_spec(name, d_model=d, n_layers=blocks, vocab_size=vocab, max_seq_len=seq)
             for name in ("llama", "hybrid")}
    models = {name: build_model(spec, seed=0) for name, spec in specs.items()}
    models["nanogpt"] = NanoGPT(vocab, d, blocks, specs["llama"].layers[0].options["n_heads"], seq)
    if args.compile:
        from cambrian.scaling.trainer import compile_blocks

        for name in ("llama", "hybrid"):
            compile_blocks(models[name])
        models["nanogpt"] = torch.compile(models["nanogpt"])
    for m in models.values():
        m.to(device)
    opts = {k: torch.optim.AdamW(m.parameters(), lr=3e-4, fused=device.type == "cuda") for k, m in models.items()}
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, vocab, (batch, seq + 1), generator=gen).to(device) for _ in range(2)]

    def step(name: str, i: int) -> float:
        x = batches[i % len(batches)]
        sync(device)
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16):
            if name == "nanogpt":
                loss = F.cross_entropy(models[name](x[:, :-1]).float().flatten(0, 1), x[:, 1:].flatten())
            else:
                loss = models[name](x[:, :-1], targets=x[:, 1:])
        opts[name].zero_grad(set_to_none=True)
        loss.backward()
        opts[name].step()
        sync(device)
        return time.perf_counter() - t0

    kernels.reset_used()
    for i in range(3):  # warm-up (and compilation)
        for name in models:
            step(name, i)
    used = sorted(kernels.used())
    times: dict[str, list[float]] = {name: [] for name in models}
    for i in range(args.steps):
        for name in (models if i % 2 == 0 else reversed(list(models))):
            times[name].append(step(name, i))
    tps = {name: batch * seq / statistics.median(ts) for name, ts in times.items()}

    flops = {name: count(spec, seq_len=seq).training_flops_per_token for name, spec in specs.items()}
    # nanoGPT: 6 N (non-embedding matmuls + head) + attention 12 L d T / 2 per token (causal)
    n_mat = sum(p.numel() for n, p in models["nanogpt"].named_parameters() if p.dim() == 2 and "wpe" not in n)
    flops["nanogpt"] = 6 * n_mat + 6 * blocks * d * seq

    measured = matmul_peak(torch.bfloat16, 8192 if device.type == "cuda" else 256, reps=5, device=device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    found = card_peak(name) if device.type == "cuda" else None
    peak, source = (found[1], f"{found[0]} bf16 dense peak {found[1] / 1e12:.0f} TFLOP/s") if found else \
        (measured, f"no data-sheet peak for {name!r}: the measured bf16 matmul peak")
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}
    parts = []
    for k in ("llama", "hybrid", "nanogpt"):
        mfu = tps[k] * flops[k] / peak
        parts.append(f"{k} {params[k] / 1e6:.1f}M {tps[k]:,.0f} tok/s MFU {100 * mfu:.1f}%")
    ratio = statistics.median(r / c for c, r in zip(times["llama"], times["nanogpt"]))
    print(f"gpu_mfu: {'; '.join(parts)}; llama vs nanogpt {ratio:.2f}x (per-pair median); "
          f"denominator {source}, measured bf16 matmul {measured / 1e12:.0f} TFLOP/s "
          f"({name}, batch {batch} x seq {seq}, bf16 autocast{', compiled per block' if args.compile else ''}"
          f"{', kernels ' + ','.join(used) if used else ''})")


if __name__ == "__main__":
    main()
