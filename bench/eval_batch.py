"""Scoring cost on CPU by batch size: the same windows, the same model, side by side.

Every compose evaluation ends by scoring ``val_tokens`` tokens of its split (131,072 in the
default campaign: 1,024 windows of 128). This builds each design at the default campaign's
proxy dims, and scores the default's val windows with :func:`cambrian.scaling.trainer.mean_loss`
in batches of each size, the sizes interleaved over ``--rounds`` (machine drift hits all
alike). Prints per design the median CPU seconds per batch size, the ratio to batch 64 (the
size before), and the largest difference in mean loss from batch 64's (float rounding: the
windows and the model are the same).

    .venv/bin/python bench/eval_batch.py nemotron jamba llama m,sw,m2,sw,m2,sw,att,sw,m2,sw [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from landscape import OPTIONS, content  # noqa: E402

from cambrian.architectures import build_model  # noqa: E402
from cambrian.plugins.domains.compose.domain import settings  # noqa: E402
from cambrian.plugins.domains.compose.evaluator import open_corpus  # noqa: E402
from cambrian.scaling.data import eval_windows  # noqa: E402
from cambrian.scaling.runs import prepare_spec  # noqa: E402
from cambrian.scaling.trainer import mean_loss  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("designs", nargs="+")
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 32, 16, 8])
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(1)  # as an evaluation worker
    s = settings(OPTIONS)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = open_corpus(s["corpus"], Path(tmp))
        tokens, seq_len, val_tokens = corpus.tokens("val"), int(s["seq_len"]), int(s["val_tokens"])
        for design in a.designs:
            model = build_model(prepare_spec(content(design), vocab_size=corpus.vocab_size, seq_len=seq_len), seed=0)
            cpu: dict[int, list[float]] = {b: [] for b in a.sizes}
            loss: dict[int, float] = {}
            for _ in range(a.rounds):
                for b in a.sizes:
                    c = time.process_time()
                    loss[b], _ = mean_loss(model, eval_windows(tokens, seq_len, val_tokens, b), "cpu")
                    cpu[b].append(time.process_time() - c)
            ref = statistics.median(cpu[a.sizes[0]])
            cells = "  ".join(f"b{b} {statistics.median(cpu[b]):5.2f} s ({statistics.median(cpu[b]) / ref:.2f})"
                              for b in a.sizes)
            diff = max(abs(loss[b] - loss[a.sizes[0]]) for b in a.sizes)
            print(f"{design:32s} {cells}  max |loss diff| {diff:.1e}", flush=True)


if __name__ == "__main__":
    main()
