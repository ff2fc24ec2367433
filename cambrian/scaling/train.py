"""Command line: train one spec on a corpus and write its metrics as JSON.

    python -m cambrian.scaling.train --spec spec.json --train-tokens 2000000 --out result.json
    accelerate launch -m cambrian.scaling.train --spec spec.json --train-tokens 7e9 --out result.json

Under ``accelerate launch`` with several processes the trainer goes data
parallel (see :mod:`cambrian.scaling.trainer`); only rank 0 writes the result.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from cambrian.scaling.data import load_corpus
from cambrian.scaling.runs import train_lm
from cambrian.scaling.trainer import TrainConfig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", required=True, help="an ArchSpec as a JSON file")
    ap.add_argument("--corpus", default="stdlib", help="stdlib, or a text file/folder")
    ap.add_argument("--tokenizer", default=None)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--train-tokens", type=float, default=None)
    ap.add_argument("--max-seconds", type=float, default=None)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup-steps", type=int, default=20)
    ap.add_argument("--schedule", default="cosine", choices=("cosine", "wsd", "constant"))
    ap.add_argument("--precision", default="auto", choices=("fp32", "bf16", "auto"))
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--checkpoint", default=None, help="checkpoint path (resumed from when present)")
    ap.add_argument("--checkpoint-every", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", default="val", choices=("val", "hidden"))
    ap.add_argument("--val-tokens", type=int, default=65536)
    ap.add_argument("--out", default=None, help="write the metrics here (default: stdout)")
    a = ap.parse_args(argv)

    if a.corpus == "stdlib":
        corpus = load_corpus("stdlib", tokenizer=a.tokenizer, cache_dir=a.cache_dir)
    else:
        corpus = load_corpus("text", paths=[a.corpus], tokenizer=a.tokenizer, cache_dir=a.cache_dir)
    config = TrainConfig(lr=a.lr, warmup_steps=a.warmup_steps, schedule=a.schedule, precision=a.precision,
                         grad_accum=a.grad_accum, max_steps=a.max_steps,
                         max_tokens=int(a.train_tokens) if a.train_tokens else None, max_seconds=a.max_seconds,
                         checkpoint_path=a.checkpoint, checkpoint_every=a.checkpoint_every)
    spec = json.loads(Path(a.spec).read_text())
    run = train_lm(spec, corpus, config, batch_size=a.batch_size, seq_len=a.seq_len, seed=a.seed,
                   split=a.split, val_tokens=a.val_tokens)
    if int(os.environ.get("RANK", "0")) == 0:
        text = json.dumps({"metrics": run.metrics, "status": run.train.status,
                           "history": run.train.history}, indent=1)
        Path(a.out).write_text(text) if a.out else print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
