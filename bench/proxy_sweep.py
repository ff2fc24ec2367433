"""The compose proxy sweep: the four hand-built references at candidate proxy settings.

For each setting (dims, batch, sequence, tokens, learning rate) it trains llama, composer,
the Nemotron-style Mamba-2 hybrid and the Mamba-1 hybrid through the compose evaluator's
own train-and-score path (one thread, seed 0), scores bits per byte on the val split, and
prints them beside the count-based unigram and bigram floors of the same split, with the
CPU seconds each candidate cost and the machine's load average while it ran (other jobs
share the cores: CPU seconds are the comparable cost, wall time is not).

    .venv/bin/python bench/proxy_sweep.py                 # every setting
    .venv/bin/python bench/proxy_sweep.py --only b64-1m   # one setting
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

REFERENCES = {"llama": "llama", "composer": "composer", "mamba2-hybrid": "hybrid",
              "mamba1-hybrid": "mamba_hybrid"}
BLOCK_LAYERS = {"llama": 2, "composer": 3, "hybrid": 2, "mamba_hybrid": 2}

# name -> (d_model, n_layers, seq_len, batch_size, train_tokens, lr)
SETTINGS = {
    "old-150k": (64, 8, 128, 16, 150_000, 6e-3),  # the previous default, for reference
    "b32-1m": (64, 8, 128, 32, 1_000_000, 3e-3),
    "b64-1m": (64, 8, 128, 64, 1_000_000, 4e-3),
    "b16-1m": (64, 8, 128, 16, 1_000_000, 3e-3),
    "b16-600k": (64, 8, 128, 16, 600_000, 3e-3),
    "s64b32-1m": (64, 8, 64, 32, 1_000_000, 3e-3),
    "s64b32-600k": (64, 8, 64, 32, 600_000, 3e-3),
    "b32-1m-lr2": (64, 8, 128, 32, 1_000_000, 2e-3),
    "b8-600k": (64, 8, 128, 8, 600_000, 3e-3),
    "s64b16-600k": (64, 8, 64, 16, 600_000, 3e-3),
    "b16-600k-lr5": (64, 8, 128, 16, 600_000, 5e-3),
}


def floors(corpus, split: str, n_tokens: int | None = None) -> dict[str, float]:
    """Count-based unigram and bigram bits per byte (:func:`cambrian.scaling.floors.corpus_floors`,
    the floors every LM evaluator records), on the first ``n_tokens`` scored tokens of ``split``."""
    from cambrian.scaling.floors import corpus_floors

    f = corpus_floors(corpus, split, n_tokens)
    return {"unigram": f.unigram_bpb, "bigram": f.bigram_bpb}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=None, help="setting names (default: all)")
    ap.add_argument("--refs", nargs="*", default=list(REFERENCES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val-tokens", type=int, default=32768)
    ap.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "cambrian"))
    ap.add_argument("--out", default=None, help="append one JSON line per run here")
    args = ap.parse_args(argv)

    from cambrian.architectures import reference_spec
    from cambrian.plugins.domains.compose.domain import DEFAULTS
    from cambrian.plugins.domains.compose.evaluator import run_proxy
    from cambrian.scaling.data import open_corpus

    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    corpus = open_corpus("stdlib", cache)
    fl = {s: floors(corpus, s, args.val_tokens) for s in ("val", "hidden")}
    print(f"floors (bpb): val unigram {fl['val']['unigram']:.3f} bigram {fl['val']['bigram']:.3f}; "
          f"hidden unigram {fl['hidden']['unigram']:.3f} bigram {fl['hidden']['bigram']:.3f}", flush=True)
    names = args.only or list(SETTINGS)
    for name in names:
        d, n, seq, bs, tokens, lr = SETTINGS[name]
        for label in args.refs:
            ref = REFERENCES[label]
            spec = reference_spec(ref, d_model=d, n_layers=max(1, round(n / BLOCK_LAYERS[ref])),
                                  max_seq_len=seq).to_dict()
            s = {**DEFAULTS, "d_model": d, "n_layers": n, "seq_len": seq, "batch_size": bs,
                 "train_tokens": tokens, "lr": lr, "val_tokens": args.val_tokens, "mqar_steps": 0,
                 "cache_dir": str(cache)}
            load0 = os.getloadavg()[0]
            c0, t0 = time.process_time(), time.perf_counter()
            with tempfile.TemporaryDirectory() as work:
                m, _ = run_proxy(spec, s, split="val", seed=args.seed, workdir=Path(work),
                                 run_dir=Path(work), threads=1, save_model=False)
            cpu, wall = time.process_time() - c0, time.perf_counter() - t0
            load1 = os.getloadavg()[0]
            row = {"setting": name, "ref": label, "d_model": d, "n_layers": n, "seq_len": seq,
                   "batch_size": bs, "train_tokens": tokens, "lr": lr, "bpb": m["bpb"],
                   "below_bigram": m["bpb"] < fl["val"]["bigram"], "params": m["params"],
                   "cpu_s": cpu, "wall_s": wall, "train_cpu_s": m["train_cpu_s"],
                   "tokens_per_s": m["tokens_per_s"], "load": [round(load0, 2), round(load1, 2)]}
            print(f"{name:14s} {label:14s} bpb {m['bpb']:.3f} (bigram {fl['val']['bigram']:.3f}) "
                  f"params {int(m['params'])} cpu {cpu:.1f}s wall {wall:.1f}s tok/s {m['tokens_per_s']:.0f} "
                  f"load {load0:.1f}-{load1:.1f}", flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
