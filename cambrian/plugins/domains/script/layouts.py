"""Task folders in other benchmarks' layouts, read as script tasks where they map.

AIRS-Bench (a folder per task, as the aira-dojo harness uses it):
  metadata.yaml (``metric_lower_is_better``, ``file_export_globs`` such as
  ``submission.csv``, ``logging_info.name`` / ``metric``, ``sota`` values),
  project_description.md, prepare.py, evaluate_prepare.py, evaluate.py, utils.py.
  Maps to: description = project_description.md; the editable file is
  ``solution.py`` (AIRS gives no starter code: create it, an empty one is
  fine, and agents draft); the trusted evaluation runs ``python evaluate.py``
  next to the exported files and reads the metrics JSON it prints; the
  direction from ``metric_lower_is_better``; ``sota`` becomes best_known.

MLGym (``tasks/<id>.yaml`` beside its files): ``id``, ``name``,
  ``description``, ``starter_code`` (the first file is the editable one, the
  rest read-only), ``evaluation_paths`` (the trusted evaluation; the first is
  run), ``evaluation_read_only``, ``baseline_scores`` (first entry becomes the
  baseline), ``metric`` / ``metric_lower_is_better`` when present.

What does not map, and is left to the task author: dataset download and
preparation (AIRS ``prepare.py`` / ``evaluate_prepare.py`` and MLGym
``dataset_configs`` pull from the Hugging Face hub; run them once yourself and
put the visible data in ``readonly`` and the labels in ``hidden/``), container
requirements (packages must already be installed), MLGym's agent, memory and
step-limit settings (Cambrian's agents and budgets replace them), and
metrics that are not one number per run.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any, Callable

import yaml

from cambrian.core.config import SandboxLimits
from cambrian.execution.harness import candidate_limits, run_candidate


def _airs(root: Path) -> dict[str, Any]:
    meta = yaml.safe_load((root / "metadata.yaml").read_text()) or {}
    info = meta.get("logging_info") or {}
    metric = str(info.get("metric") or meta.get("metric") or "score")
    lower = bool(meta.get("metric_lower_is_better", False))
    readonly = [f for f in ("utils.py", "data") if (root / f).exists()]
    sota = meta.get("sota") or info.get("sota")
    best = {}
    if isinstance(sota, (int, float)):
        best = {metric: float(sota)}
    elif isinstance(sota, list) and sota and isinstance(sota[0], dict) and "sota_score" in sota[0]:
        best = {metric: float(sota[0]["sota_score"])}
    return {"name": str(info.get("name") or root.name), "description": "project_description.md",
            "editable": ["solution.py"], "readonly": readonly, "evaluate": "command",
            "metrics": [{"name": metric, "direction": "min" if lower else "max"}], "objective": metric,
            "best_known": best, "source_format": "airs-bench",
            "options": {"eval_command": ["python", "evaluate.py"], "eval_files": ["evaluate.py", "utils.py"],
                        "submission": list(meta.get("file_export_globs") or ["submission.csv"]),
                        "hidden_dir": "hidden"}}


def _mlgym_yaml(root: Path) -> Path | None:
    found = sorted(root.glob("*.yaml"))
    for p in found:
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError:
            continue
        if isinstance(data, dict) and "evaluation_paths" in data and "id" in data:
            return p
    return None


def _mlgym(root: Path) -> dict[str, Any]:
    cfg = yaml.safe_load(_mlgym_yaml(root).read_text())
    starter = [str(p) for p in cfg.get("starter_code") or []]
    if not starter:
        raise ValueError(f"{root}: the MLGym task has no starter_code to edit")
    rel = [Path(p).name if not (root / p).exists() else p for p in starter]
    evals = [str(p) for p in cfg.get("evaluation_paths") or []]
    eval_rel = [Path(p).name if not (root / p).exists() else p for p in evals]
    metric = str(cfg.get("metric") or "score")
    lower = bool(cfg.get("metric_lower_is_better", False))
    baseline: dict[str, Any] = {}
    scores = cfg.get("baseline_scores") or []
    if scores and isinstance(scores[0], dict):
        metric = metric if metric in scores[0] else next(iter(scores[0]))
        baseline = {metric: float(scores[0][metric])}
    desc = cfg.get("description", "")
    return {"name": str(cfg["id"]), "description": desc, "editable": rel[:1],
            "readonly": [p for p in rel[1:] if p not in eval_rel], "evaluate": "command",
            "metrics": [{"name": metric, "direction": "min" if lower else "max"}], "objective": metric,
            "baseline": baseline, "source_format": "mlgym",
            "options": {"eval_command": ["python", eval_rel[0]], "eval_files": eval_rel,
                        "submission": ["*"], "hidden_dir": "hidden"}}


def detect_layout(root: Path) -> Callable[[Path], dict[str, Any]] | None:
    if (root / "metadata.yaml").is_file() and (root / "evaluate.py").is_file():
        return _airs
    if _mlgym_yaml(root) is not None:
        return _mlgym
    return None


class SubmissionRejected(RuntimeError):
    """What the script exported is not a plain file inside its own folder."""


def copy_submission(src: Path, dst: Path, root: Path) -> None:
    """Copy the candidate's file ``src`` to ``dst`` without following links, as the trusted side.

    A symbolic link, a FIFO, a device or anything but a regular file is rejected, and so is a
    path that leaves ``root`` (through a linked folder): the harness runs as root and must never
    read what the candidate points it at.
    """
    rel = src.relative_to(root)
    real_parent = os.path.realpath(src.parent)
    if real_parent != os.path.realpath(root) and not real_parent.startswith(os.path.realpath(root) + os.sep):
        raise SubmissionRejected(f"submission {rel} lies behind a linked folder; export plain files")
    try:
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        kind = "a symbolic link" if src.is_symlink() else f"unreadable ({exc.strerror})"
        raise SubmissionRejected(f"submission {rel} is {kind}; export plain files") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise SubmissionRejected(f"submission {rel} is not a regular file (a FIFO, device or folder)")
        with open(dst, "xb") as out:
            shutil.copyfileobj(f, out)


def run_trusted_command(task, run_dir: Path, worker: SandboxLimits) -> dict[str, float]:
    """Run the task's own evaluation on what the script exported; return its metrics.

    A fresh directory gets the exported files (``options.submission`` globs, plain files only,
    see :func:`copy_submission`), the task's evaluation files and its hidden files; the
    command's last printed JSON object holds the metrics. It is the task's code, not the
    agent's, but it reads the agent's files, so it runs as a throw-away unprivileged uid too,
    and an error it prints (which may quote the hidden labels) never reaches the store: the
    reason names only how it ended. Its timeout is ``options.eval_timeout_s`` (300), never past
    what the worker (``worker``, its limits) has left: the harness's one rule.
    """
    opts = task.options
    ev = run_dir.parent / (run_dir.name + "-eval")
    if ev.exists():
        shutil.rmtree(ev)
    ev.mkdir()
    exported = 0
    for pattern in opts.get("submission", ["submission.csv"]):
        for f in sorted(run_dir.glob(pattern)):
            if f.name in opts.get("eval_files", []) or (f.is_dir() and not f.is_symlink()):
                continue
            copy_submission(f, ev / f.name, run_dir)
            exported += 1
    if exported == 0:
        raise RuntimeError(f"the script exported nothing matching {opts.get('submission')}")
    for f in opts.get("eval_files", []):
        if (task.root / f).is_file():
            shutil.copy2(task.root / f, ev / Path(f).name)
    hidden = task.root / opts.get("hidden_dir", "hidden")
    if hidden.is_dir():
        shutil.copytree(hidden, ev / "hidden")
    from cambrian.plugins.domains.script.evaluator import python_command  # a cycle: the evaluator imports this module

    cmd = python_command(opts["eval_command"])
    limits = candidate_limits(worker, float(opts.get("eval_timeout_s", 300)))
    res = run_candidate(cmd, ev, limits, hide=(task.root,))
    if res.timed_out or res.returncode != 0:
        how = "timed out" if res.timed_out else f"exit code {res.returncode}"
        raise RuntimeError(f"the task's evaluation of the submission failed ({how}); "
                           f"its output is in {ev.name}/stderr.log")
    for line in reversed(res.stdout_tail.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            return {k: float(v) for k, v in data.items() if isinstance(v, (int, float))}
    raise RuntimeError("the task's evaluation printed no JSON object of metrics")
