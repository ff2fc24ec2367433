"""The compose pack's 'references' check, run alone: each reference at the proxy vs the count-based floors.

    .venv/bin/python bench/references_floors.py                     # the default proxy, llama and composer
    .venv/bin/python bench/references_floors.py --set train_tokens=150000 lr=6e-3 batch_size=16
    .venv/bin/python bench/references_floors.py --refs llama composer nemotron jamba

Trains each reference exactly as the campaign's ``references`` phase does (the compose
evaluator's ``run_proxy``, seed 0, val split, no MQAR) and prints, per reference, its val bits
per byte beside the unigram and bigram floors of the same scored tokens, the ratio
bpb / bigram floor (below 1: the proxy has learned more than byte-pair statistics), and the
one warning line the campaign would print (or none).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml

from cambrian.plugins.domains.compose.domain import ComposeDomain, settings
from cambrian.plugins.domains.compose.evaluator import run_proxy
from cambrian.plugins.domains.compose.phases import floor_line
from cambrian.scaling.floors import below


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--refs", nargs="+", default=["llama", "composer"])
    ap.add_argument("--set", nargs="*", default=[], help="domain options as key=value (YAML values)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "cambrian"))
    args = ap.parse_args(argv)
    opts = {k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    s = settings({**opts, "mqar_steps": 0, "cache_dir": args.cache_dir})
    refs = ComposeDomain(**opts).baselines()
    rows = []
    for name in args.refs:
        with tempfile.TemporaryDirectory() as work:
            c0 = time.process_time()
            m, _ = run_proxy(refs[name].content, s, split="val", seed=args.seed, workdir=Path(work),
                             run_dir=Path(work), threads=1, save_model=False)
        rows.append({"name": name, "bpb": m["bpb"], "floor_unigram_bpb": m["floor_unigram_bpb"],
                     "floor_bigram_bpb": m["floor_bigram_bpb"], "below_bigram": below(m["bpb"], m["floor_bigram_bpb"])})
        print(f"{name:10s} val bpb {m['bpb']:.4f}  unigram floor {m['floor_unigram_bpb']:.4f}  bigram floor "
              f"{m['floor_bigram_bpb']:.4f}  bpb/bigram {m['bpb'] / m['floor_bigram_bpb']:.3f}  "
              f"CPU {time.process_time() - c0:.0f} s", flush=True)
    proxy = {k: s[k] for k in ("d_model", "n_layers", "seq_len", "batch_size", "train_tokens", "lr", "val_tokens")}
    ratios = " ".join(f"{r['name']}={r['bpb'] / r['floor_bigram_bpb']:.3f}" for r in rows)
    print(f"RESULT references vs bigram floor (bpb ratio, < 1 is below): {ratios}; proxy {proxy}; "
          f"warning: {floor_line(rows) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
