"""Which hidden-split tokens to score: the seed spread of a design's bpb under four window layouts.

A campaign's hidden verdict needs the margin between two designs to exceed the sum of their
seed sds. Part of that spread is not training noise but how the scored tokens are chosen: a
split is documents in order, so its first ``val_tokens`` tokens are one or two files. This
bench trains designs of a finished campaign (the ones its hidden phase evaluated, picked by
hash prefix) once per hidden seed, exactly as the compose evaluator does at the proxy, and
scores every trained model on the same split four ways:

- ``first32k``: the first 32,768 tokens in consecutive windows (the layout before caa0694);
- ``spread32k``: 256 windows spread evenly over the split (``eval_windows``, the layout now);
- ``spread128k``: 1,024 windows spread the same way;
- ``all``: every window of the split.

It prints each design's mean +- sd per layout, and for two designs the margin against the
sum of their sds (the verdict's spread), so the layouts compare side by side on the same
trained models.

    .venv/bin/python bench/hidden_windows.py RUN_DIR fa2fef 9a72af --out rows.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from cambrian.architectures import ArchSpec
from cambrian.core.store import Store
from cambrian.plugins.domains.compose.domain import DEFAULTS
from cambrian.scaling import runs, trainer
from cambrian.scaling.data import bits_per_byte, eval_windows, open_corpus

LAYOUTS = ("first32k", "spread32k", "spread128k", "all")


def first_windows(tokens: np.ndarray, seq_len: int, n_tokens: int, batch_size: int = 64):
    """The former layout: consecutive windows from the split's start."""
    n_win = min(len(tokens) - 1, n_tokens) // seq_len
    for b in range(0, n_win, batch_size):
        w = np.stack([np.asarray(tokens[r * seq_len:(r + 1) * seq_len + 1], dtype=np.int64)
                      for r in range(b, min(n_win, b + batch_size))])
        yield w[:, :-1], w[:, 1:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir")
    ap.add_argument("designs", nargs="+", help="hash prefixes of designs the run's hidden phase evaluated")
    ap.add_argument("--seeds", type=int, nargs="*", default=[1000, 1001, 1002, 1003, 1004])
    ap.add_argument("--out", default=None, help="append one JSON line per trained model")
    args = ap.parse_args(argv)

    store = Store(args.run_dir, create=False)
    settings = {**DEFAULTS, **store.get_meta("config")["domain"]["options"]}
    cands: dict[str, dict] = {}
    for node in store.nodes(phase="hidden"):
        if any(node.candidate.hash.startswith(p) for p in args.designs):
            cands.setdefault(node.candidate.hash, node.candidate.content)
    corpus = open_corpus(settings["corpus"], Path.home() / ".cache" / "cambrian")
    toks, seq, bpt = corpus.tokens("hidden"), int(settings["seq_len"]), corpus.bytes_per_token("hidden")
    torch.set_num_threads(1)
    rows: dict[str, list[dict]] = {}
    for h, content in cands.items():
        for seed in args.seeds:
            cfg = trainer.TrainConfig(lr=float(settings["lr"]), max_tokens=int(settings["train_tokens"]),
                                      device="cpu", precision="auto", warmup_steps=int(settings["warmup_steps"]),
                                      threads=1, seed=seed, log_every=5)
            c0 = time.process_time()
            run = runs.train_lm(ArchSpec.from_dict(content), corpus, cfg, batch_size=int(settings["batch_size"]),
                                seq_len=seq, seed=seed, split="hidden", val_tokens=32768)
            windows = {"first32k": first_windows(toks, seq, 32768), "spread32k": eval_windows(toks, seq, 32768),
                       "spread128k": eval_windows(toks, seq, 131072), "all": eval_windows(toks, seq)}
            row = {"hash": h, "seed": seed, "params": run.metrics["params"]}
            for name, it in windows.items():
                loss, _ = trainer.mean_loss(run.model, it, torch.device("cpu"))
                row[name] = bits_per_byte(loss, bpt)
            row["cpu_s"] = time.process_time() - c0
            rows.setdefault(h, []).append(row)
            print(json.dumps(row), flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(row) + "\n")

    def stat(h: str, k: str) -> tuple[float, float]:
        v = [r[k] for r in rows[h]]
        return statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0

    for h in rows:
        print(h[:12], "  ".join(f"{k} {m:.4f} +- {s:.4f}" for k in LAYOUTS for m, s in [stat(h, k)]))
    if len(rows) == 2:
        a, b = rows
        for k in LAYOUTS:
            (ma, sa), (mb, sb) = stat(a, k), stat(b, k)
            print(f"{k:10s} margin {abs(ma - mb):.4f} spread {sa + sb:.4f} ratio {abs(ma - mb) / (sa + sb):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
