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

Options: candidate_timeout_s (None: the harness's rule, what is left of the
sandbox timeout less a reserve of 10% (at least 2 s), so the harness outlives
the candidate and records why it stopped; see cambrian/execution/harness.py),
max_output_mb (16).

``run_python`` is the reusable part for other packs.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from cambrian import EvalJob, Evaluator, Options, hookimpl
from cambrian.core.config import SandboxLimits
from cambrian.core.plugins import get_plugin_manager
from cambrian.execution.harness import candidate_limits, explain, record, run_candidate
from cambrian.execution.sandbox import SandboxResult

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


def run_python(source: str, entry: str, inputs: dict[str, Any], workdir: Path, limits: SandboxLimits,
               *, max_output_mb: float = 16) -> CodeRun:
    """Run ``entry(**inputs)`` of ``source`` in a sandboxed, unprivileged process."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "candidate.py").write_text(source)
    (workdir / "inputs.json").write_text(json.dumps(inputs))
    (workdir / "output.json").unlink(missing_ok=True)
    res = run_candidate([sys.executable, "-I", str(RUNNER), entry], workdir, limits)
    if res.timed_out or res.returncode != 0:
        return CodeRun(res, error=f"the candidate failed: {explain(res, limits)}")
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


class PythonCodeEvaluator(Evaluator):
    name = "python-code"

    class Options(Options):
        candidate_timeout_s: float | None = Field(None, gt=0, description="seconds for the candidate "
                                                  "(default: what is left of the sandbox timeout)")
        max_output_mb: float = Field(16, gt=0, description="largest result the candidate may return")

    def evaluate(self, job: EvalJob, workdir: Path) -> dict[str, float]:
        task = get_plugin_manager().get("domain", job.domain)(**job.domain_options).task
        nested = candidate_limits(SandboxLimits(**job.limits), self.options.candidate_timeout_s)
        run = run_python(job.candidate.content, task.entry, task.inputs(job.split, job.seed),
                         workdir / "candidate", nested,
                         max_output_mb=self.options.max_output_mb)
        s = run.sandbox
        record(s, workdir / "sandbox.json", error=run.error)
        if not run.ok:
            warn = f" [sandbox: {'; '.join(s.warnings)}]" if s.warnings else ""
            raise CandidateFailed(run.error + warn)
        return task.score(run.output, job.split, job.seed)


@hookimpl
def cambrian_evaluators():
    return [PythonCodeEvaluator]
