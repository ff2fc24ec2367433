"""Training (fwd+bwd+AdamW) tokens/s of every token mixer at equal width, and
Cambrian's Mamba against transformers' Mamba (its pure-torch fallback on CPU).

Each model is 4 layers of one mixer only (no channel mixer), d_model 128, byte
vocabulary, batch 16 x seq 256, as in MEASUREMENTS.md; the ratio column is against
softmax attention measured in the same run. The transformers comparison uses
batch 2 (its fallback needs seconds per step) for both sides.

    .venv/bin/python bench/mixers.py [--steps 6] [--threads 2] [--device cuda]

``--before-after`` times the CPU paths of the Mamba-1, Mamba-2 and short-conv mixers
against their previous implementation (bench/mixers_before.py) in this one process, at
the default campaign's size: each mixer alone (d_model 64, fwd+bwd of a (8, 128, 64)
input), then a full AdamW step of the ``hybrid`` and ``mamba_hybrid`` references (d_model
64, 4 blocks, batch 8 x 128). Old and new steps alternate, timed in thread CPU time; the
ratio is the median over pairs, and the outputs and gradients of both are compared.

    .venv/bin/python bench/mixers.py --before-after [--threads 1] [--steps 30]

On CUDA (``--device cuda``) every model trains in bf16 autocast (``--precision fp32`` for
fp32) and the recurrent mixers get one row per kernel library (``kernels=...``: the policy of
:mod:`cambrian.architectures.kernels`; ``torch`` is the pure-torch path): Mamba-1 through
mamba-ssm's selective scan, Mamba-2 through mamba-ssm's or fla's chunked SSD, GLA through fla.
A library that is not installed is listed as such. The last line gives the fastest Mamba and
Mamba-2 rows against attention (auto: flash-attn where installed, else SDPA).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F
from mixers_before import before  # bench/ is on the path when this file runs

from cambrian.architectures import ArchSpec, build_model, reference_spec
from cambrian.architectures.modules.attention import CausalSelfAttention
from cambrian.architectures.modules.conv import GatedShortConv
from cambrian.architectures.modules.mamba import MambaMixer
from cambrian.architectures.modules.mamba2 import Mamba2Mixer

MIXERS = [
    ("attention", {}), ("attention", {"window": 64}), ("linear_attention", {}),
    ("linear_attention", {"mode": "retention"}), ("mamba", {}), ("mamba2", {}), ("conv", {}),
]


def tokens_per_second(model, batch: int, seq: int, steps: int, logits=lambda out: out,
                      device: torch.device | None = None, bf16: bool = False, policy: str = "auto") -> float:
    from cambrian.architectures import kernels

    device = device or torch.device("cpu")
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, 256, (batch, seq + 1), generator=torch.Generator().manual_seed(0)).to(device)
    times = []
    for i in range(steps + 2):
        if device.type == "cuda":  # kernels run asynchronously: time whole steps
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        with kernels.policy(policy), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(logits(model(x[:, :-1])).float().flatten(0, 1), x[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= 2:  # two warm-up steps
            times.append(time.perf_counter() - t0)
    return batch * seq / statistics.median(times)


def mixer_model(name: str, options: dict, scan: str | None = None, seq: int = 256):
    spec = ArchSpec.from_dict({"d_model": 128, "max_seq_len": max(256, seq),
                               "layers": [{"primitive": name, "options": options}] * 4})
    model = build_model(spec, seed=0)
    if scan:
        for m in model.modules():
            if hasattr(m, "scan_impl"):
                m.scan_impl = scan
    return model


def _paired_ms(step_old, step_new, steps: int) -> tuple[float, float, float]:
    """Median ms of each, and the median over adjacent pairs of old / new.

    Timed in this thread's CPU time (time.thread_time): with one torch thread, forward and
    backward run on the calling thread, and on a shared machine CPU time is what a
    campaign pays, while wall time also counts waiting for a core (several-fold swings
    under load)."""
    old, new = [], []
    for i in range(steps + 3):
        t0 = time.thread_time()
        step_old()
        t1 = time.thread_time()
        step_new()
        t2 = time.thread_time()
        if i >= 3:  # warm-up pairs
            old.append(t1 - t0)
            new.append(t2 - t1)
    ratio = statistics.median(o / n for o, n in zip(old, new))
    return statistics.median(old) * 1e3, statistics.median(new) * 1e3, ratio


def _max_diff(m_old, m_new, x) -> float:
    """Largest |old - new| over the output and every parameter's gradient."""
    outs = []
    for m in (m_old, m_new):
        m.zero_grad(set_to_none=True)
        y = m(x)
        y.pow(2).mean().backward()
        outs.append([y.detach()] + [p.grad for p in m.parameters()])
    return max((a - b).abs().max().item() for a, b in zip(*outs))


def before_after(steps: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 128, 64)
    if torch.get_num_threads() != 1:
        print("note: more than one torch thread; thread CPU time then misses the other threads' work")
    print(f"{'fwd+bwd, (8, 128, 64), thread CPU ms':40s} "
          f"{'before ms':>10s} {'after ms':>9s} {'speedup':>8s} {'max |diff|':>11s}")
    for label, mixer in [("mamba2 (head_dim 32)", Mamba2Mixer(64, head_dim=32)),
                         ("mamba2 (head_dim 16, 2 groups)", Mamba2Mixer(64, head_dim=16, n_groups=2)),
                         ("mamba", MambaMixer(64)), ("conv (kernel 4)", GatedShortConv(64, 4)),
                         ("attention (for scale)", CausalSelfAttention(64, 4, 4, 16, rope=True))]:
        old = before(copy.deepcopy(mixer))
        xo, xn = x.clone().requires_grad_(), x.clone().requires_grad_()
        ms_old, ms_new, ratio = _paired_ms(lambda m=old, x=xo: m(x).sum().backward(),
                                           lambda m=mixer, x=xn: m(x).sum().backward(), steps)
        print(f"{label:40s} {ms_old:10.2f} {ms_new:9.2f} {ratio:7.2f}x {_max_diff(old, mixer, x):11.1e}")
    tokens = torch.randint(0, 256, (8, 129), generator=torch.Generator().manual_seed(0))
    print(f"{'AdamW step, d 64, 4 blocks, 8 x 128':40s}")
    for name in ("hybrid", "mamba_hybrid", "llama"):
        new = build_model(reference_spec(name, d_model=64, n_layers=4), seed=0)
        old = before(copy.deepcopy(new))
        diff = _max_diff(old, new, tokens[:, :-1])

        def train_step(model, opt):
            loss = F.cross_entropy(model(tokens[:, :-1]).flatten(0, 1), tokens[:, 1:].flatten())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        opt_old = torch.optim.AdamW(old.parameters(), lr=1e-3)
        opt_new = torch.optim.AdamW(new.parameters(), lr=1e-3)
        ms_old, ms_new, ratio = _paired_ms(lambda m=old, o=opt_old: train_step(m, o),
                                           lambda m=new, o=opt_new: train_step(m, o), steps)
        print(f"{name:40s} {ms_old:10.2f} {ms_new:9.2f} {ratio:7.2f}x {diff:11.1e}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before-after", action="store_true",
                    help="CPU Mamba-1 / Mamba-2 / conv mixers against their previous implementation")
    ap.add_argument("--steps", type=int, default=None, help="default 6 (30 with --before-after)")
    ap.add_argument("--threads", type=int, default=None, help="default 2 (1 with --before-after)")
    ap.add_argument("--skip-hf", action="store_true")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                    help="auto: bf16 autocast on CUDA, fp32 on CPU")
    args = ap.parse_args()
    if args.before_after:
        torch.set_num_threads(args.threads or 1)  # a campaign's workers train on 1 thread
        return before_after(args.steps or 30)
    args.threads, args.steps = args.threads or 2, args.steps or 6
    from cambrian.architectures import kernels

    device = torch.device(args.device)
    bf16 = args.precision == "bf16" or (args.precision == "auto" and device.type == "cuda")
    torch.set_num_threads(args.threads)
    cases = [(name, options, "auto") for name, options in MIXERS + [("mamba", {"scan": "chunked"})]]
    if device.type == "cuda":  # one row per kernel library for the recurrent mixers
        cases += [("mamba", {}, "torch"), ("mamba", {}, "mamba_ssm"), ("mamba2", {}, "torch"),
                  ("mamba2", {}, "mamba_ssm"), ("mamba2", {}, "fla"), ("linear_attention", {}, "torch"),
                  ("linear_attention", {}, "fla"), ("attention", {}, "torch")]
    rows, missing = [], []
    for name, options, policy in cases:
        opts = {k: v for k, v in options.items() if k != "scan"}
        label = name + "".join(f" {k}={v}" for k, v in options.items())
        if policy != "auto":
            label += f" kernels={policy}"
            if policy != "torch" and not kernels.installed(policy):
                missing.append(label)
                continue
        rows.append((label, tokens_per_second(mixer_model(name, opts, options.get("scan"), args.seq),
                                              args.batch, args.seq, args.steps, device=device, bf16=bf16,
                                              policy=policy)))
    base = rows[0][1]
    where = f", {args.device}, {'bf16' if bf16 else 'fp32'}" if device.type != "cpu" else ""
    print(f"{f'mixer (4 layers, d 128, {args.batch} x {args.seq}' + where + ')':46s} {'tok/s':>9s} {'vs attention':>12s}")
    for label, tps in rows:
        print(f"{label:46s} {tps:9,.0f} {tps / base:11.2f}x")
    for label in missing:
        print(f"{label:46s} {'not installed':>9s}")
    best = {m: max(t for lab, t in rows if lab.split()[0] == m) for m in ("mamba", "mamba2")}
    line = (f"mixers: cambrian mamba {best['mamba']:,.0f} tok/s = {best['mamba'] / base:.2f}x attention "
            f"{base:,.0f}, mamba2 {best['mamba2'] / base:.2f}x (fastest row of each{where})")
    if not args.skip_hf:
        from transformers import MambaConfig, MambaForCausalLM

        cfg = MambaConfig(vocab_size=256, hidden_size=128, state_size=16, expand=2, conv_kernel=4,
                          num_hidden_layers=4, use_mambapy=False)
        torch.manual_seed(0)
        hf = MambaForCausalLM(cfg)
        hf_tps = tokens_per_second(hf, 2, 256, 2, logits=lambda out: out.logits, device=device, bf16=bf16)
        ours = tokens_per_second(mixer_model("mamba", {}), 2, 256, 4, device=device, bf16=bf16)
        print(f"{'transformers MambaForCausalLM (batch 2)':42s} {hf_tps:9,.0f}")
        print(f"{'cambrian mamba (batch 2)':42s} {ours:9,.0f}")
        line += f"; vs transformers' Mamba fallback at batch 2: {ours:,.0f} vs {hf_tps:,.0f} tok/s = {ours / hf_tps:.0f}x"
    print(line)


if __name__ == "__main__":
    main()
