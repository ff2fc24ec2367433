"""``python-code``: run candidate Python source in a nested sandbox; the harness scores it.

The evaluation worker (trusted: the harness) writes the candidate to its own
directory and runs it in a second sandboxed process with the campaign's
limits, as a throw-away unprivileged uid when the campaign runs as root (see
cambrian/execution/sandbox.py). The candidate's entry function gets the task's
inputs and its return value comes back through ``output.json``; the task's
``score`` turns that answer into metrics here, in the harness. So nothing the
candidate prints, and no file it writes, can set a metric, and it cannot
write the harness's result file, the run directory or the store.

The domain must offer ``task`` with ``entry``, ``inputs(split, seed)`` and
``score(output, split, seed)`` (see the ``python-task`` domain).

Options: candidate_timeout_s (None: what is left of the sandbox timeout less a
reserve of 10% (at least 2 s), so the harness outlives the candidate and records
why it stopped), max_output_mb (16).

``run_python`` is the reusable part for other packs.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cambrian import EvalJob, Evaluator, hookimpl
from cambrian.core.config import SandboxLimits
from cambrian.execution.sandbox import SandboxResult, run_sandboxed

RUNNER = Path(__file__).with_name("code_runner.py")


class CandidateFailed(RuntimeError):
    """The candidate crashed, hung, hit a limit or answered nothing usable."""


@dataclass(frozen=True)
class CodeRun:
    sandbox: SandboxResult
    output: Any = None
    error: str = ""  # why there is no usable output ('' when there is)

    @property
    def ok(self) -> bool:
        return not self.error


def _explain(res: SandboxResult, limits: SandboxLimits) -> str:
    reason = res.reason or "it wrote no output"
    tail = res.stderr_tail
    if "MemoryError" in tail or "Cannot allocate memory" in tail:
        reason += f" (out of memory: the limit is {limits.memory_mb} MB)"
    elif "Resource temporarily unavailable" in tail and ("fork" in tail or "thread" in tail):
        reason += f" (process limit: at most {limits.max_procs} processes/threads)"
    elif "Permission denied" in tail or "Read-only file system" in tail:
        reason += " (it may only write inside its own working directory)"
    elif "Network is unreachable" in tail or "Errno 101" in tail:
        reason += " (no network in the sandbox)"
    return reason


def run_python(source: str, entry: str, inputs: dict[str, Any], workdir: Path, limits: SandboxLimits,
               *, max_output_mb: float = 16) -> CodeRun:
    """Run ``entry(**inputs)`` of ``source`` in a sandboxed, unprivileged process."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "candidate.py").write_text(source)
    (workdir / "inputs.json").write_text(json.dumps(inputs))
    (workdir / "output.json").unlink(missing_ok=True)
    res = run_sandboxed([sys.executable, "-I", str(RUNNER), entry], workdir, limits, unprivileged=True)
    if res.timed_out or res.returncode != 0:
        return CodeRun(res, error=f"the candidate failed: {_explain(res, limits)}")
    out = workdir / "output.json"
    if not out.is_file():
        return CodeRun(res, error="the candidate exited without an answer (no output.json)")
    if out.stat().st_size > max_output_mb * 1024 * 1024:
        return CodeRun(res, error=f"the candidate's answer is larger than {max_output_mb} MB")
    try:
        data = json.loads(out.read_text())
        return CodeRun(res, output=data["output"])
    except (ValueError, KeyError, TypeError) as exc:
        return CodeRun(res, error=f"the candidate's answer is not readable JSON: {exc}")


def _process_age() -> float:
    """Seconds since this process started (0 where /proc is not available)."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


class PythonCodeEvaluator(Evaluator):
    name = "python-code"

    def evaluate(self, job: EvalJob, workdir: Path) -> dict[str, float]:
        from cambrian.core.plugins import get_plugin_manager

        task = get_plugin_manager().get("domain", job.domain)(**job.domain_options).task
        limits = SandboxLimits(**job.limits)
        # The candidate gets what is left of the worker's own timeout, less a reserve for
        # scoring and the result file, so the harness outlives it and records why it stopped.
        left = limits.timeout_s - _process_age()
        timeout = self.options.get("candidate_timeout_s") or max(1.0, left - max(2.0, 0.1 * limits.timeout_s))
        nested = limits.model_copy(update={"timeout_s": float(timeout)})
        run = run_python(job.candidate.content, task.entry, task.inputs(job.split, job.seed),
                         workdir / "candidate", nested,
                         max_output_mb=float(self.options.get("max_output_mb", 16)))
        s = run.sandbox
        record = {"uid": s.uid, "network_isolated": s.network_isolated, "pids_isolated": s.pids_isolated,
                  "warnings": list(s.warnings), "wall_s": s.wall_s, "returncode": s.returncode,
                  "timed_out": s.timed_out, "error": run.error}
        (workdir / "sandbox.json").write_text(json.dumps(record, indent=1))  # the harness's own record
        if not run.ok:
            warn = f" [sandbox: {'; '.join(s.warnings)}]" if s.warnings else ""
            raise CandidateFailed(run.error + warn)
        return task.score(run.output, job.split, job.seed)


@hookimpl
def cambrian_evaluators():
    return [PythonCodeEvaluator]
