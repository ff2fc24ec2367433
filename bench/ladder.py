"""A small CPU scaling ladder: three specs x three scales on the built-in corpus.

Trains each spec, grown from its proxy pattern to every CPU scale (cpu-0.1m,
cpu-0.5m, cpu-2m; ``--budget`` scales their token budgets), scores val bits
per byte, fits bpb = a * C^-b per spec with bootstrap intervals, compares each
slope with the Llama-style baseline's (measured side by side in this run), and
reports the rank agreement of the specs between scales.

    .venv/bin/python bench/ladder.py --budget 0.1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cambrian.architectures import reference_spec
from cambrian.scaling.data import load_corpus
from cambrian.scaling.ladder import analyse_ladder, extrapolate, get_scale, lm_train_fn, run_ladder

SCALE_NAMES = ("cpu-0.1m", "cpu-0.5m", "cpu-2m")


def specs() -> dict[str, dict]:
    proxy = {"d_model": 64, "n_layers": 2, "max_seq_len": 128}
    conv_attn = reference_spec("llama", **proxy).to_dict()
    conv_attn["layers"] = [{"primitive": "conv"}, {"primitive": "swiglu"},
                           {"primitive": "attention", "options": {"n_heads": 1}}, {"primitive": "swiglu"}]
    return {"llama": reference_spec("llama", **proxy).to_dict(),
            "composer": reference_spec("composer", **proxy).to_dict(),
            "conv-attn": conv_attn}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=0.1, help="fraction of each scale's token budget")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val-tokens", type=int, default=16384)
    ap.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "cambrian"))
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    corpus = load_corpus("stdlib", cache_dir=args.cache_dir)
    scales = []
    for name in SCALE_NAMES:
        s = get_scale(name)
        scales.append(type(s)(**{**s.__dict__, "train_tokens": int(s.train_tokens * args.budget)}))
    def show(r):
        print(f"{r.spec_name:<10} {r.scale:<9} {r.params:>9.0f} {r.flops:>12.3e} {r.loss:>8.4f} {r.wall_s:>7.1f}",
              flush=True)

    print(f"{'spec':<10} {'scale':<9} {'params':>9} {'train FLOPs':>12} {'val bpb':>8} {'wall s':>7}")
    rungs = run_ladder(specs(), scales, lm_train_fn(corpus, seed=args.seed, val_tokens=args.val_tokens,
                                                     threads=args.threads), on_rung=show)
    res = analyse_ladder(rungs, baseline="llama")
    wall = time.perf_counter() - t0

    print("\nfitted bpb = a * C^-b (95% bootstrap CI), only where >= 3 rungs below the unigram floor span >= 10x")
    for name, sf in res.fits.items():
        if not sf.resolved:
            print(f"  {name:<10} {sf.reason}")
            continue
        fit = sf.fit
        lo, hi = fit.ci["b"]
        C, pred, plo, phi = extrapolate(fit, specs()[name], "350m")
        print(f"  {name:<10} b = {fit.b:.4f} [{lo:.4f}, {hi:.4f}]   at 350m (C={C:.2e}): "
              f"{pred:.3f} [{plo:.3f}, {phi:.3f}] bpb")
    for name, cmp in res.vs_baseline.items():
        print(f"  {name:<10} {cmp['text']}")
    print("\nrank agreement between scales")
    for (a, b), ra in res.agreement.items():
        print(f"  {a} vs {b}: spearman {ra.spearman:+.2f} (p={ra.spearman_p:.2f})  "
              f"kendall {ra.kendall:+.2f} (p={ra.kendall_p:.2f})  n={ra.n}")
    ratios = " ".join(f"{n}={1 + c['percent_faster'] / 100:.3f}" if c["resolved"] else f"{n}=not resolved"
                      for n, c in res.vs_baseline.items())
    ends = res.agreement.get((scales[0].name, scales[-1].name))
    print(f"\nRESULT ladder 3x3 budget={args.budget}: slope ratio vs llama {ratios}; "
          f"spearman {SCALE_NAMES[0]}->{SCALE_NAMES[-1]} {ends.spearman:+.2f}; wall {wall:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
