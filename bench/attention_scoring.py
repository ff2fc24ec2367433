"""What scoring an attention design in two processes (full pass, then prefixes) costs, against
scoring it in one process (the full pass and the prefix passes together, as before issue 12's
remainder), side by side in the same run on the same trained weights.

Trains the built-in softmax design once per repeat through the evaluator's own steps (the
``runner.py train`` sandbox), then, interleaved, scores it both ways with the evaluator's own
``score_nested`` (each a sandboxed ``runner.py score``):

  split     one run on every window (shuffled), then one run on the prefixes only (what
            ``AttentionEvaluator.evaluate`` does)
  one       a single run given the windows and the prefixes together (the old cost)

Prints one line: median wall seconds of training, of each scoring, and the ratios (scoring
split / one; whole evaluation split / one, training included); then the same in CPU seconds of
the sandboxed runs (what a loaded machine stretches least).

    .venv/bin/python bench/attention_scoring.py --repeats 3 [--tasks lm,mqar] [--default-budget]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

from cambrian import Candidate, EvalJob
from cambrian.plugins.domains.attention.domain import options_with_defaults, seed_source
from cambrian.plugins.domains.attention.evaluator import (
    PREFIX_CHECKS,
    AttentionEvaluator,
    corpus_cache,
    prepare,
)
from cambrian.scaling.causality import prefix_positions, prefixes, scoring_order

# the test suite's CPU-second budget (tests/attention/conftest.py), so a run takes a minute
TINY = {
    "model": {"d_model": 32, "n_heads": 2, "n_layers": 1},
    "tasks": {
        "mqar": {"steps": 30, "batch_size": 16, "n_train": 512, "n_eval": 64},
        "listops": {"steps": 30, "batch_size": 16, "n_train": 512, "n_eval": 64},
        "lm": {"steps": 30, "seq_len": 32, "batch_size": 4, "train_tokens": 20000, "eval_tokens": 1024},
    },
    "corpus": {"source": "text", "paths": [str(Path(sysconfig.get_paths()["stdlib"]) / "email")]},
    "cost": {"batch": 2, "seq": 32},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tasks", default="lm,mqar")
    ap.add_argument("--default-budget", action="store_true", help="the domain's default budget, not TINY")
    args = ap.parse_args()
    names = args.tasks.split(",")
    base = {} if args.default_budget else TINY
    options = {**base, "tasks": {n: base.get("tasks", {}).get(n, {}) for n in names},
               "weights": {n: 1.0 for n in names}}
    ev = AttentionEvaluator()
    times: dict[str, list[float]] = {"train": [], "split": [], "one": []}
    cpu: dict[str, list[float]] = {"train": [], "split": [], "one": []}  # CPU seconds of the sandboxed runs
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp).chmod(0o755)  # the dropped uids must reach their directories
        for i in range(args.repeats):
            job = EvalJob(node_id=f"n{i}", run_dir=tmp, domain="attention", domain_options=options,
                          evaluator="attention", candidate=Candidate(kind="code", content=seed_source("softmax")),
                          limits={"timeout_s": 3600})
            work = Path(tmp) / "evals" / job.node_id / "work"
            work.mkdir(parents=True)
            settings = options_with_defaults(job.domain_options)
            cand = work / "candidate"
            keep = prepare(settings, job, cand)
            cache = corpus_cache(settings, tmp)
            t = time.perf_counter()
            res, _ = ev.run_nested(job, cand, "train", hide=(cache,))
            times["train"].append(time.perf_counter() - t)
            cpu["train"].append(res.cpu_s)
            assert res.returncode == 0, res.stderr_tail
            rng = np.random.default_rng(i)
            full, pre = {}, {}
            for n in settings["tasks"]:
                xs, vocab = keep[n]["inputs"], keep["config"]["tasks"][n]["vocab"]
                full[n] = {"x": (xs[scoring_order(rng, len(xs))], (*xs.shape, vocab))}
                pos = prefix_positions(rng, *xs.shape[:2], n=PREFIX_CHECKS)
                pre[n] = {f"p{j}": (x, (*x.shape, vocab)) for j, x in enumerate(prefixes(xs, pos))}
            hide = (cache, cand)
            for way in (("split", "one") if i % 2 == 0 else ("one", "split")):
                t = time.perf_counter()
                if way == "split":
                    ev.score_nested(job, cand / "out", work / "scoring", "scoring", keep, hide, full)
                    ev.score_nested(job, cand / "out", work / "prefix", "prefix", keep, hide, pre)
                else:
                    ev.score_nested(job, cand / "out", work / "one", "one", keep, hide,
                                    {n: {**full[n], **pre[n]} for n in full})
                times[way].append(time.perf_counter() - t)
                runs = ("scoring", "prefix") if way == "split" else ("one",)
                cpu[way].append(sum(json.loads((work / f"sandbox_{r}.json").read_text())["cpu_s"] for r in runs))
    med = {k: statistics.median(v) for k, v in times.items()}
    whole = (med["train"] + med["split"]) / (med["train"] + med["one"])
    c = {k: statistics.median(v) for k, v in cpu.items()}
    whole_cpu = (c["train"] + c["split"]) / (c["train"] + c["one"])
    print(f"attention_scoring repeats={args.repeats} tasks={args.tasks} "
          f"budget={'default' if args.default_budget else 'tiny'} train={med['train']:.2f}s "
          f"scoring_split={med['split']:.2f}s scoring_one={med['one']:.2f}s "
          f"scoring split/one={med['split'] / med['one']:.2f}x evaluation split/one={whole:.3f}x | cpu: "
          f"train={c['train']:.2f}s scoring_split={c['split']:.2f}s scoring_one={c['one']:.2f}s "
          f"evaluation split/one={whole_cpu:.3f}x")


if __name__ == "__main__":
    main()
