"""Training tokens/s of Cambrian's llama reference spec against a plain-torch nanoGPT.

Both models (about 0.9M parameters: 4 layers, d_model 128, 4 heads, byte vocabulary)
train with AdamW on the same random batches (16 x 256) in this one process; timed
steps alternate between the two so machine load hits both alike. The ratio is the
median over pairs (one Cambrian step and the adjacent nanoGPT step) of nanoGPT's
step time over Cambrian's, with its interquartile range: on a shared, noisy machine
load changes between pairs far more than within one, so the per-pair ratio cancels
most of it. The tok/s of each model (median step) and the ratio of total times are
printed too. Also reports the
achieved FLOP/s (count()'s 3 x forward FLOPs per token) against a measured
torch.mm peak in fp32 and bf16 (the bf16 share only where bf16 matmul is the faster
one: CPUs without bf16 units run it far below fp32, and a share of that means nothing).

On CUDA (``--device cuda``) both train in bf16 autocast by default, Cambrian with the fused
kernels that are installed (listed in the output), and torch.compile'd copies are timed
in the same alternation: the ratio to nanoGPT compiled, and Cambrian compiled per block
(the trainer's ``compile`` option) against its eager self.

    .venv/bin/python bench/train_throughput.py [--steps 20] [--threads 2] [--device cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from cambrian.architectures import build_model, count, reference_spec


class NanoBlock(nn.Module):
    def __init__(self, d: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.ln_1, self.ln_2 = nn.LayerNorm(d, bias=False), nn.LayerNorm(d, bias=False)
        self.c_attn = nn.Linear(d, 3 * d, bias=False)
        self.c_proj = nn.Linear(d, d, bias=False)
        self.c_fc = nn.Linear(d, 4 * d, bias=False)
        self.mlp_proj = nn.Linear(4 * d, d, bias=False)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.c_proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class NanoGPT(nn.Module):
    """nanoGPT's model.py in brief: learned positions, pre-LN blocks, tied head."""

    def __init__(self, vocab: int, d: int, n_layers: int, n_heads: int, seq: int):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(seq, d)
        self.blocks = nn.ModuleList(NanoBlock(d, n_heads) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d, bias=False)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.wte.weight
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1), device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


def sync(device: torch.device) -> None:
    if device.type == "cuda":  # kernels run asynchronously: wait before reading the clock
        torch.cuda.synchronize(device)


def matmul_peak(dtype: torch.dtype, n: int = 1024, reps: int = 3, device: str = "cpu") -> float:
    device = torch.device(device)
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    torch.mm(a, b)
    times = []
    for _ in range(reps):
        sync(device)
        t0 = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / min(times)


def pair_ratio(ours: list[float], ref: list[float]) -> tuple[float, float, float]:
    """Median and quartiles over pairs of the reference's step time over ours (> 1: ours faster)."""
    pair = sorted(r / o for o, r in zip(ours, ref))
    q1, med, q3 = statistics.quantiles(pair, n=4) if len(pair) > 1 else pair * 3
    return med, q1, q3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                    help="auto: bf16 autocast on CUDA, fp32 on CPU (both models alike)")
    ap.add_argument("--compile", default="auto", choices=("auto", "on", "off"),
                    help="also time torch.compile'd copies (nanoGPT whole, Cambrian per block); auto: on CUDA")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    bf16 = args.precision == "bf16" or (args.precision == "auto" and device.type == "cuda")
    compiled = args.compile == "on" or (args.compile == "auto" and device.type == "cuda")
    spec = reference_spec("llama", d_model=128, n_layers=4, vocab_size=256, max_seq_len=args.seq)
    models = {"cambrian": build_model(spec, seed=0),
              "nanogpt": NanoGPT(256, 128, 4, spec.layers[0].options["n_heads"], args.seq)}
    if compiled:  # the same weights, compiled: Cambrian block by block (as the trainer's option), nanoGPT whole
        import copy

        from cambrian.scaling.trainer import compile_blocks

        models["cambrian_compiled"] = copy.deepcopy(models["cambrian"])
        compile_blocks(models["cambrian_compiled"])
        models["nanogpt_compiled"] = torch.compile(copy.deepcopy(models["nanogpt"]))
    for m in models.values():
        m.to(device)
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-3, fused=device.type == "cuda") for k, m in models.items()}
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, 256, (args.batch, args.seq + 1), generator=gen).to(device) for _ in range(4)]

    def step(name: str, i: int) -> float:
        x = batches[i % len(batches)]
        sync(device)
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            if name.startswith("cambrian"):  # the trainer's call: head and loss fusable (kernels.py)
                loss = models[name](x[:, :-1], targets=x[:, 1:])
            else:
                loss = F.cross_entropy(models[name](x[:, :-1]).float().flatten(0, 1), x[:, 1:].flatten())
        opts[name].zero_grad(set_to_none=True)
        loss.backward()
        opts[name].step()
        sync(device)
        return time.perf_counter() - t0

    from cambrian.architectures import kernels

    n = 8192 if device.type == "cuda" else 1024  # a GPU needs a large product to reach its peak
    fp32_before = matmul_peak(torch.float32, n, reps=10, device=device)  # the best of two samples:
    kernels.reset_used()
    for i in range(3):                                                   # load only lowers a peak
        for name in models:                                              # (and compiles happen here)
            step(name, i)
    used = sorted(kernels.used())
    times: dict[str, list[float]] = {name: [] for name in models}
    for i in range(args.steps):
        for name in (models if i % 2 == 0 else reversed(list(models))):
            times[name].append(step(name, i))
    tok = args.batch * args.seq
    tps = {name: tok / statistics.median(ts) for name, ts in times.items()}
    med, q1, q3 = pair_ratio(times["cambrian"], times["nanogpt"])
    total = sum(times["nanogpt"]) / sum(times["cambrian"])
    params = {name: sum(p.numel() for p in m.parameters()) for name, m in models.items()}
    c = count(spec, seq_len=args.seq)
    achieved = c.training_flops_per_token * tps["cambrian"]
    fp32 = max(fp32_before, matmul_peak(torch.float32, n, reps=10, device=device))
    # bf16 on a CPU without bf16 units runs at ~1 GFLOP/s: a small product says as much
    bf16_peak = matmul_peak(torch.bfloat16, n if device.type == "cuda" else 256, device=device)
    if bf16_peak > fp32:
        peaks = (f"{100 * achieved / fp32:.0f}% of fp32 peak {fp32 / 1e9:.0f}, "
                 f"{100 * achieved / bf16_peak:.0f}% of bf16 peak {bf16_peak / 1e9:.0f} GFLOP/s")
    else:  # no fast bf16 matmul here (CPUs without bf16 units): a share of it means nothing
        peaks = (f"{100 * achieved / fp32:.0f}% of fp32 peak {fp32 / 1e9:.0f} GFLOP/s "
                 f"(bf16 matmul is slower here, {bf16_peak / 1e9:.1f} GFLOP/s: no bf16 share)")
    extra = ""
    if compiled:
        mc, _, _ = pair_ratio(times["cambrian"], times["nanogpt_compiled"])
        cc, _, _ = pair_ratio(times["cambrian_compiled"], times["nanogpt_compiled"])
        ce, _, _ = pair_ratio(times["cambrian_compiled"], times["cambrian"])
        extra = (f"; vs nanogpt compiled {tps['nanogpt_compiled']:,.0f} tok/s: cambrian {mc:.2f}x, "
                 f"cambrian compiled per block {tps['cambrian_compiled']:,.0f} tok/s {cc:.2f}x "
                 f"({ce:.2f}x its eager self)")
    print(f"train_throughput: cambrian llama {params['cambrian'] / 1e6:.2f}M {tps['cambrian']:,.0f} tok/s, "
          f"nanogpt {params['nanogpt'] / 1e6:.2f}M {tps['nanogpt']:,.0f} tok/s, "
          f"ratio {med:.2f}x (per-pair median, IQR {q1:.2f}-{q3:.2f}, {args.steps} pairs; "
          f"totals {total:.2f}x){extra}; achieved {achieved / 1e9:.1f} GFLOP/s = "
          f"{peaks} (threads {args.threads}, batch {args.batch}, seq {args.seq}, "
          f"{'bf16 autocast' if bf16 else 'fp32'}, device {args.device}"
          f"{', kernels ' + ','.join(used) if used else ''})")


if __name__ == "__main__":
    main()
