"""The ``script`` evaluator: re-run the agent's script in a sandbox, score what it saved.

Runs in the evaluation worker (trusted). For each of ``budgets.repeats`` seeds
it lays out a fresh directory (read-only task files, the candidate as the
editable file, the visible data splits), runs the task's command there as a
throw-away unprivileged uid with the run's time limit, then scores the
saved outputs itself:

- ``lm-bpb`` (autoresearch): loads ``out/model.ts`` (no agent code runs in
  the harness), checks shape and causality, and computes bits per byte on the
  hidden split the script never had (search evaluations on its first
  ``hidden_tokens``, final ``split: hidden`` evaluations on the next ones); metric
  ``val_bpb`` (mean over seeds) and its spread, beside ``floor_unigram_bpb`` and
  ``floor_bigram_bpb`` (count-based models of those same tokens, fitted on train:
  :mod:`cambrian.scaling.floors`; also in ``lm-target``).
- ``lm-target`` (speedrun): the same model checks; valid only when the saved
  model reaches ``options.target_bpb`` (+ ``options.target_tolerance``) on the
  hidden split in every run; metric ``train_cpu_s``, the run's CPU time as
  measured by the harness, and ``speedup_recovered`` when ``reference`` gives
  ``baseline_cpu_s`` and ``record_cpu_s``.
- ``command`` (AIRS-Bench / MLGym style): copies the files the script wrote
  that match ``options.submission`` into a fresh directory with the task's
  trusted evaluation files and hidden files, runs ``options.eval_command`` and
  reads the metrics from the last JSON object it prints.

Printed numbers are never used as metrics; a script that prints a metric
better than what its saved model scores is rejected as a fake claim.

Options: claim_tolerance (0.02, absolute, for printed claims).
"""

from __future__ import annotations

import math
import re
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from cambrian import EvalJob, Evaluator, Metric, Options
from cambrian.core.config import SandboxLimits
from cambrian.execution.harness import candidate_limits, private_dir, record, run_candidate
from cambrian.execution.sandbox import SandboxResult
from cambrian.plugins.domains.script.domain import task_from_options
from cambrian.plugins.domains.script.layouts import run_trusted_command
from cambrian.plugins.domains.script.scoring import bits_per_byte, check_causal, load_saved_model
from cambrian.scaling.data import open_corpus
from cambrian.scaling.floors import corpus_floors

CLAIM = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*[:=]\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*$", re.M)


class ScriptFailed(RuntimeError):
    """The script crashed, timed out or saved nothing usable."""


class FakeMetric(RuntimeError):
    """The script printed a metric its saved outputs do not support."""


class TargetNotReached(RuntimeError):
    pass


def _tail(text: str, n: int = 1500) -> str:
    return text if len(text) <= n else "..." + text[-n:]


def corpus_tokens(task, run_dir: str, split: str = "val") -> dict[str, Any]:
    """Byte tokens of the task's corpus: visible train/val slices and a slice of the hidden split.

    The script never sees the hidden split. Search evaluations (``split: val``) are scored on
    its first ``hidden_tokens``; final evaluations (``split: hidden``) on the next ones, which
    no search decision has seen.
    """
    data = {"corpus": {"source": "stdlib"}, "train_tokens": 2_000_000, "val_tokens": 65_536,
            "hidden_tokens": 32_768, **task.data}
    corpus = open_corpus(data["corpus"], corpus_cache(task, run_dir))
    if corpus.vocab_size != 256:
        raise ValueError("script LM tasks are byte-level: the corpus needs the byte tokenizer")
    hidden = _held_out(corpus.tokens("hidden"), int(data["hidden_tokens"]), split)
    eval_tokens, seq = int(data.get("eval_tokens", 32_768)), int(task.budgets.seq_len)
    scored = min(len(hidden) - 1, eval_tokens) // seq * seq  # the targets scoring.bits_per_byte scores
    offset = int(data["hidden_tokens"]) if split == "hidden" else 0
    return {"train": np.asarray(corpus.tokens("train")[: data["train_tokens"]]),
            "val": np.asarray(corpus.tokens("val")[: data["val_tokens"]]),
            "hidden": hidden, "eval_tokens": eval_tokens,
            # count-based floors of the very hidden tokens scored, fitted on the train split
            "floors": corpus_floors(corpus, "hidden", scored, offset).metrics()}


def corpus_cache(task, run_dir: str) -> Path:
    """The corpus cache (it holds the hidden split): private to the trusted worker."""
    return private_dir(task.data.get("cache_dir") or Path(run_dir) / "cache")


def _held_out(tokens, n: int, split: str):
    if split != "hidden":
        return np.asarray(tokens[:n])
    if len(tokens) < 2 * n:
        raise ValueError(f"the hidden split has {len(tokens)} tokens, fewer than the 2 x {n} that a "
                         "final evaluation needs (lower data.hidden_tokens)")
    return np.asarray(tokens[n:2 * n])


def run_script(task, source: str, run_dir: Path, seed: int, limits: SandboxLimits,
               data: dict[str, Any] | None, hide: tuple[Path, ...] = ()) -> SandboxResult:
    """Lay out one run of the script and execute it sandboxed."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    for f in task.readonly:
        src, dst = task.root / f, run_dir / f
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
    (run_dir / task.editable_file).write_text(source)
    if data is not None:
        (run_dir / "data").mkdir(exist_ok=True)
        for split in ("train", "val"):  # the hidden split never enters the script's directory
            data[split].astype("uint8").tofile(run_dir / "data" / f"{split}.bin")
    cmd = python_command(task.run_command())
    env = {"TASK_SEED": str(seed), "TASK_TIME_BUDGET_S": str(task.budgets.time_s),
           "TASK_SEQ_LEN": str(task.budgets.seq_len)}
    if data is not None:  # the script's own val estimate then scores the same windows as the harness
        env["TASK_EVAL_TOKENS"] = str(data["eval_tokens"])
    if "target_bpb" in task.options:
        env["TASK_TARGET_BPB"] = str(task.options["target_bpb"])
    return run_candidate(cmd, run_dir, limits, env, hide=hide)


RUN_SCRIPT = Path(__file__).with_name("run_script.py")  # see its docstring


def python_command(cmd: list[str]) -> list[str]:
    if cmd and cmd[0] == "python":
        rest = cmd[1:]
        if rest and rest[0].endswith(".py"):
            return [sys.executable, str(RUN_SCRIPT), *rest]
        return [sys.executable, *rest]
    return list(cmd)


def claims(stdout: str) -> dict[str, float]:
    """``name: number`` lines the script printed (the last of each name)."""
    return {m.group(1): float(m.group(2)) for m in CLAIM.finditer(stdout)}


def check_claim(printed: dict[str, float], name: str, measured: float, lower_better: bool, tol: float) -> None:
    if name not in printed:
        return
    claim = printed[name]
    better = measured - claim if lower_better else claim - measured
    if not math.isfinite(claim) or better > tol:
        raise FakeMetric(f"fake metric: the script printed {name}={claim:.4f}, but its saved model scores "
                         f"{measured:.4f} on the same data; printed numbers are never trusted")


class ScriptEvaluator(Evaluator):
    name = "script"

    class Options(Options):
        claim_tolerance: float = Field(0.02, ge=0, description="relative gap allowed between a metric the "
                                       "script prints and the one the harness measures")

    def evaluate(self, job: EvalJob, workdir: Path) -> dict[str, float | Metric]:
        task = task_from_options(job.domain_options)
        worker = SandboxLimits(**job.limits)
        mode = task.evaluate
        data = corpus_tokens(task, job.run_dir, job.split) if mode in ("lm-bpb", "lm-target") else None
        runs = []
        for r in range(task.budgets.repeats):
            seed = job.seed * 1000 + r
            rd = workdir / f"run{r}"
            # the task's limit per run, but never past what the worker has left (harness rule)
            limits = candidate_limits(worker, task.budgets.timeout_s)
            # the task folder (scoring code, hidden labels) and the corpus cache stay out of sight
            hide = (task.root, corpus_cache(task, job.run_dir)) if data is not None else (task.root,)
            res = run_script(task, job.candidate.content, rd, seed, limits, data, hide)
            record(res, workdir / f"run{r}.json", seed=seed)
            if res.timed_out or res.returncode != 0:
                raise ScriptFailed(f"run {r} (seed {seed}) failed: {res.reason}\n{_tail(res.stderr_tail)}")
            runs.append(self.score_run(task, mode, rd, res, data, worker))
        values = self.aggregate(task, mode, runs)
        directions = {m.name: m.direction for m in task.metrics}  # e.g. speedup_recovered: max
        return {k: Metric(name=k, value=v, direction=directions[k]) if k in directions else v
                for k, v in values.items()}

    def score_run(self, task, mode: str, rd: Path, res: SandboxResult, data,
                  worker: SandboxLimits) -> dict[str, float]:
        tol = self.options.claim_tolerance
        printed = claims(res.stdout_tail)
        if mode == "command":
            metrics = run_trusted_command(task, rd, worker)
            for m in task.metrics:
                if m.name in metrics:
                    check_claim(printed, m.name, metrics[m.name], m.direction.value == "min", tol)
            return metrics

        import torch  # heavy, and only the LM modes need it: the pack loads without it

        torch.set_num_threads(1)
        seq = task.budgets.seq_len
        check_causal(load_saved_model(rd / "out"), seq, 256)
        visible = bits_per_byte(lambda: load_saved_model(rd / "out"), data["val"], seq, data["eval_tokens"])
        hidden = bits_per_byte(lambda: load_saved_model(rd / "out"), data["hidden"], seq, data["eval_tokens"])
        # the script may print its own val estimate; it must match what its model really does
        check_claim(printed, "val_bpb", visible, True, tol)
        return {"hidden_bpb": hidden, "visible_val_bpb": visible, "cpu_s": res.cpu_s, "wall_s": res.wall_s,
                **data["floors"]}

    def aggregate(self, task, mode: str, runs: list[dict[str, float]]) -> dict[str, float]:
        def stats(key: str, name: str) -> dict[str, float]:
            vals = [r[key] for r in runs]
            out = {name: statistics.fmean(vals), f"{name}_spread": max(vals) - min(vals)}
            out.update({f"{name}_run{i}": v for i, v in enumerate(vals)})
            return out

        out: dict[str, float] = {"seed_spread": task.baseline.seed_spread, "repeats": float(len(runs))}
        if mode == "command":
            for key in runs[0]:
                if all(key in r for r in runs):
                    out.update(stats(key, key))
            return out
        out.update(stats("visible_val_bpb", "visible_val_bpb"))
        out.update({k: runs[0][k] for k in ("floor_unigram_bpb", "floor_bigram_bpb") if k in runs[0]})
        if mode == "lm-bpb":
            out.update(stats("hidden_bpb", "val_bpb"))
            return out
        target = float(task.options["target_bpb"]) + float(task.options.get("target_tolerance", 0.0))
        worst = max(r["hidden_bpb"] for r in runs)
        if worst > target:
            raise TargetNotReached(f"invalid: the saved model scores {worst:.4f} bits per byte on the hidden "
                                   f"split, above the target {target:.4f}; the run does not count")
        out.update(stats("hidden_bpb", "hidden_bpb"))
        out.update(stats("cpu_s", "train_cpu_s"))
        ref = task.reference
        if "baseline_cpu_s" in ref and "record_cpu_s" in ref:
            gain = float(ref["baseline_cpu_s"]) - float(ref["record_cpu_s"])
            out["speedup_recovered"] = (float(ref["baseline_cpu_s"]) - out["train_cpu_s"]) / gain
        return out
