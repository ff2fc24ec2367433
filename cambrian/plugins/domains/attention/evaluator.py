"""The ``attention`` evaluator: the harness side of scoring a mixer design.

Runs in the evaluation worker (trusted). The candidate's code runs in three separate nested
sandboxes, one after the other, each as a fresh throw-away unprivileged uid in a fresh directory
(cambrian/execution/harness.py):

1. training (``runner.py train``): training data and causality probes only, never evaluation
   inputs (val or hidden); it saves the trained weights;
2. full scoring (``runner.py score``): the candidate's source from the job (not the training
   directory's copy), the weights (loaded as data) and every evaluation window, in a random
   order; it is not told which positions are re-scored;
3. prefix scoring (``runner.py score`` again): the same source and weights and only the
   prefixes ``x[row, :t+1]`` at the positions this side drew (one per row), so it never holds
   a token that follows a prefix, and nothing of process 2 reaches it.

The scoring processes return raw logits only; the corpus cache and the other processes'
directories are hidden from them, and their directories (inputs included) are removed when
they end.

This side then checks and scores:

- shape: the mixer maps [B, T, D] to [B, T, D];
- causality (cambrian.scaling.causality): probe inputs that differ only from position ``cut`` on
  must give the same outputs before ``cut``; and on the real evaluation windows, the trained
  model's logits at t from a pass over x[:t+1] must equal the scored full-pass logits at t
  (else: invalid, "peeks at future tokens");
- MQAR / ListOps accuracy from the argmax of the logits against targets neither process
  received; LM bits per byte from the log-softmax of the logits at the true next bytes.

Options: candidate_timeout_s (None: the harness's rule, what is left of the sandbox
timeout less 10%, at least 2 s; see cambrian/execution/harness.py), causal_tol (1e-4).
"""

from __future__ import annotations

import json
import math
import secrets
import sys
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from cambrian import Cost, EvalJob, Evaluator, Options
from cambrian.core.config import SandboxLimits
from cambrian.execution.evaluation import CUDA_ADDRESS_SPACE_MB
from cambrian.execution.harness import (
    candidate_limits,
    explain,
    private_dir,
    record,
    remove_tree,
    run_candidate,
)
from cambrian.plugins.domains.attention.domain import options_with_defaults
from cambrian.scaling.causality import (
    NotCausal,
    describe,
    first_leak,
    first_mismatch,
    perturb,
    prefix_positions,
    prefixes,
    probe_shapes,
    scoring_order,
)
from cambrian.scaling.data import eval_windows, open_corpus
from cambrian.scaling.device import Runtime, wants_cuda
from cambrian.scaling.floors import corpus_floors
from cambrian.scaling.synthetic import IGNORE, make_split, make_task

RUNNER = Path(__file__).with_name("runner.py")
EVAL_CHUNK = 64  # rows per forward pass when the scoring process runs the evaluation inputs
PREFIX_CHECKS = 8  # positions of the evaluation windows re-scored by prefix, per task
LM_CHANCE_BPB = 8.0  # uniform over 256 bytes


class DesignRejected(RuntimeError):
    """The design ran but broke the interface (shape, causality, outputs)."""




def _synthetic(name: str, opts: dict[str, Any], split: str, seed: int):
    keys = {"mqar": ("num_kv_pairs", "num_queries", "num_keys", "num_values"),
            "listops": ("max_len", "max_depth", "max_args")}[name]
    task = make_task(name, **{k: opts[k] for k in keys if k in opts})
    train = make_split(task, "train", opts["n_train"], seed=seed)
    evald = make_split(task, split, opts["n_eval"], seed=0)  # fixed, so designs compare on the same data
    return task, train, evald


def _corpus(settings: dict[str, Any], run_dir: str):
    return open_corpus(settings["corpus"], corpus_cache(settings, run_dir))


def corpus_cache(settings: dict[str, Any], run_dir: str) -> Path:
    """The corpus cache (it holds the hidden split): private to the trusted worker."""
    return private_dir(settings.get("cache_dir") or Path(run_dir) / "cache")


def prepare(settings: dict[str, Any], job: EvalJob, cand_dir: Path) -> dict[str, Any]:
    """Write config, probes and task inputs for the runner; return what scoring needs."""
    m, tasks = settings["model"], settings["tasks"]
    cand_dir.mkdir(parents=True, exist_ok=True)
    (cand_dir / "mixer.py").write_text(job.candidate.content)
    keep: dict[str, Any] = {}
    runner_tasks: dict[str, dict[str, Any]] = {}
    eval_rows: dict[str, int] = {}
    for name, t in tasks.items():
        if name == "lm":
            corpus = _corpus(settings, job.run_dir)
            train = np.asarray(corpus.tokens("train")[: t["train_tokens"]])
            wins = list(eval_windows(corpus.tokens(job.split), t["seq_len"], t["eval_tokens"]))
            xs = np.concatenate([w[0] for w in wins])
            targets = np.concatenate([w[1] for w in wins])
            keep["lm"] = {"targets": targets, "bytes_per_token": corpus.bytes_per_token(job.split),
                          "floors": corpus_floors(corpus, job.split, targets.size, seq_len=t["seq_len"]).metrics()}
            keep["lm"]["inputs"] = xs  # for the scoring process only
            np.savez(cand_dir / "lm.npz", train_tokens=train)
            runner_tasks[name] = {"vocab": corpus.vocab_size, "seq_len": t["seq_len"], **t}
            eval_rows[name] = len(xs)
        else:
            task, train, evald = _synthetic(name, t, job.split, job.seed)
            np.savez(cand_dir / f"{name}.npz", train_inputs=train.inputs, train_targets=train.targets)
            keep[name] = {"targets": evald.targets, "inputs": evald.inputs}  # inputs: for the scoring process only
            runner_tasks[name] = {"vocab": task.vocab_size, "seq_len": task.seq_len, **t}
            eval_rows[name] = len(evald.inputs)
    # Causality probes (cambrian.scaling.causality): the real training and evaluation shapes of
    # every task and random ones, each with the future perturbed at random positions. Fresh
    # randomness per evaluation, so a design can't be fitted to the probes.
    rng = np.random.default_rng()
    real = [(rt["batch_size"], rt["seq_len"]) for rt in runner_tasks.values()]
    real += [(min(EVAL_CHUNK, eval_rows[n]), rt["seq_len"]) for n, rt in runner_tasks.items()]
    shapes = probe_shapes(rng, real or [(3, 32)], max_len=max(T for _, T in real or [(3, 32)]))
    probes = [perturb(rng, rng.standard_normal((B, T, m["d_model"])).astype(np.float32),
                      lambda shape: rng.standard_normal(shape).astype(np.float32)) for B, T in shapes]
    np.savez(cand_dir / "probe.npz", **{f"x_a{i}": p.a for i, p in enumerate(probes)},
             **{f"x_b{i}": p.b for i, p in enumerate(probes)})
    keep["probes"] = [(p.a.shape, p.cut) for p in probes]
    config = {**m, "seed": job.seed, "tasks": runner_tasks, "cost_batch": settings["cost"]["batch"],
              "cost_seq": settings["cost"]["seq"], "threads": 1, "device": settings["device"]}
    (cand_dir / "config.json").write_text(json.dumps(config))
    keep["config"] = config
    return keep


def prepare_scoring(job: EvalJob, trained: Path, where: Path, keep: dict[str, Any],
                    inputs: dict[str, dict[str, Any]]) -> None:
    """Lay out one scoring process's directory: the candidate's source (the job's copy), the
    trained weights (regular files only: a link the training process left is refused) and, per
    task, the arrays of token windows to run the model on (``inputs[task][key]``)."""
    where.mkdir(parents=True)
    where.chmod(0o700)  # its uid only: a later candidate (another uid) can't read these inputs
    (where / "mixer.py").write_text(job.candidate.content)
    (where / "config.json").write_text(json.dumps({**keep["config"], "eval_chunk": EVAL_CHUNK}))
    for name in keep["config"]["tasks"]:
        src = trained / f"{name}.pt"
        if src.is_symlink() or not src.is_file():
            raise DesignRejected(f"the training run saved no weights for task {name!r}")
        (where / f"{name}.pt").write_bytes(src.read_bytes())
        np.savez(where / f"{name}_inputs.npz", **inputs[name])


def load_logits(where: Path, name: str, key: str, shape: tuple[int, ...]):
    """Logits a scoring process saved for input ``key`` of task ``name``, checked to be ``shape``.

    Mapped first (a header that claims more than the file holds fails there, before any memory
    is spent), then copied."""
    path = where / "out" / f"{name}.{key}.npy"
    if path.is_symlink() or not path.is_file():
        raise DesignRejected(f"the scoring run saved no logits for task {name!r}")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DesignRejected(f"the logits of task {name!r} do not load: {exc}") from None
    if arr.shape != shape:
        raise DesignRejected(f"{name} logits have shape {list(arr.shape)}, expected {list(shape)}")
    return np.array(arr, dtype=np.float32)


def check_prefix(name: str, full, pre, positions: list[tuple[int, int]], tol: float) -> None:
    """Prefix re-scoring of the trained model on the real evaluation windows: at the sampled
    (row, t), a pass over x[:t+1] alone, in a process that never saw the rest of the window,
    gave the same logits as the full pass that is scored."""
    rows = [r for r, _ in positions]
    ts = [t for _, t in positions]
    i = first_mismatch(full[rows, ts], pre, tol)
    if i is not None:
        raise NotCausal(describe(positions[i], f"on the {name} evaluation windows, the trained model's output"))


def check_probe(out: Path, keep: dict[str, Any], tol: float) -> None:
    y = np.load(out / "probe_out.npz")
    for i, (shape, cut) in enumerate(keep["probes"]):
        ya, yb = y[f"y_a{i}"], y[f"y_b{i}"]
        if ya.shape != tuple(shape) or yb.shape != tuple(shape):
            raise DesignRejected(f"wrong output shape: Mixer returned {list(ya.shape)} for an input of "
                                 f"{list(shape)} (it must return [B, T, d_model])")
        if not (np.isfinite(ya).all() and np.isfinite(yb).all()):
            raise DesignRejected("the mixer's output contains NaN or inf on a random input")
        leak = first_leak(ya, yb, cut, tol)
        if leak is not None:
            raise NotCausal(describe(leak, f"on a [{shape[0]}, {shape[1]}] input, the output"))


def score(settings: dict[str, Any], logits: dict[str, Any], keep: dict[str, Any]) -> dict[str, float]:
    """Metrics from the logits and the targets only this side holds."""
    metrics: dict[str, float] = {}
    parts: dict[str, float] = {}
    for name in settings["tasks"]:
        full = logits[name].astype(np.float64)
        targets = keep[name]["targets"]
        if name == "lm":
            logp = full - full.max(-1, keepdims=True)
            logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
            nats = -np.take_along_axis(logp, targets[..., None], -1).mean()
            bpb = float(nats / math.log(2) / keep["lm"]["bytes_per_token"])
            metrics["lm_bpb"] = bpb
            metrics.update({f"lm_{k}": v for k, v in keep["lm"]["floors"].items()})  # count-based floors
            parts[name] = max(0.0, 1.0 - bpb / LM_CHANCE_BPB)
        else:
            pred = full.argmax(-1)
            mask = targets != IGNORE
            acc = float((pred[mask] == targets[mask]).mean())
            metrics[f"{name}_acc"] = acc
            parts[name] = acc
    w = settings["weights"]
    total = sum(w.get(n, 0.0) for n in parts)
    metrics["score"] = sum(w.get(n, 0.0) * v for n, v in parts.items()) / total if total else math.nan
    return metrics


class AttentionEvaluator(Evaluator):
    name = "attention"

    class Options(Options):
        candidate_timeout_s: float | None = Field(None, gt=0, description="seconds for the design's run "
                                                  "(default: what the sandbox timeout leaves, less 10%)")
        causal_tol: float = Field(1e-4, gt=0, description="largest change of past outputs under a future edit")

    def evaluate(self, job: EvalJob, workdir: Path) -> tuple[dict[str, float], Cost]:
        settings = options_with_defaults(job.domain_options)
        cand_dir = workdir / "candidate"
        keep = prepare(settings, job, cand_dir)
        cache = corpus_cache(settings, job.run_dir)
        res_train, nested = self.run_nested(job, cand_dir, "train", hide=(cache,))
        out = cand_dir / "out"
        record(res_train, workdir / "sandbox.json")
        self.raise_failure(res_train, nested, out, done="report.json")
        check_probe(out, keep, self.options.causal_tol)
        report = json.loads((out / "report.json").read_text())
        for name, t in report["tasks"].items():
            if t["status"] != "completed":
                raise DesignRejected(f"training on {name} stopped: {t['status']} ({t['reason']})")
        # Scoring: two more processes, each a fresh uid and directory. The first runs the trained
        # models on every evaluation window, in a random order, and is not told which positions
        # are re-scored; the second runs them on the prefixes x[row, :t+1] at those positions
        # only, so it holds no token that follows a prefix, and nothing of the first reaches it
        # (cambrian.scaling.causality: the rules of prefix re-scoring).
        rng = np.random.default_rng()
        tasks = list(settings["tasks"])
        orders = {n: scoring_order(rng, len(keep[n]["inputs"])) for n in tasks}
        positions = {n: prefix_positions(rng, *keep[n]["inputs"].shape[:2], n=PREFIX_CHECKS) for n in tasks}
        vocab = {n: keep["config"]["tasks"][n]["vocab"] for n in tasks}
        # Their directories get unguessable names in a folder that other uids may pass through but
        # not list: a scoring process that opens its own directory to everyone still can't be found
        # by another node's candidate running at the same time (the windows are the same for all).
        workdir.chmod(0o711)
        token = secrets.token_hex(8)
        where = {w: workdir / f"{w}-{token}" for w in ("scoring", "prefix")}
        hide = (cache, cand_dir, *where.values())
        full, res_full = self.score_nested(job, out, where["scoring"], "scoring", keep, hide, {
            n: {"x": (keep[n]["inputs"][orders[n]], (*keep[n]["inputs"].shape, vocab[n]))} for n in tasks})
        pre, res_pre = self.score_nested(job, out, where["prefix"], "prefix", keep, hide, {
            n: {f"p{i}": (x, (*x.shape, vocab[n])) for i, x in enumerate(prefixes(keep[n]["inputs"], positions[n]))}
            for n in tasks})
        logits = {}
        for n in tasks:
            logits[n] = np.empty_like(full[n]["x"])
            logits[n][orders[n]] = full[n]["x"]  # back in the windows' order
            if not np.isfinite(logits[n]).all():
                raise DesignRejected(f"the {n} logits contain NaN or inf")
            last = np.stack([pre[n][f"p{i}"][0, t] for i, (_, t) in enumerate(positions[n])]) \
                if positions[n] else np.zeros((0, vocab[n]), np.float32)
            check_prefix(n, logits[n], last, positions[n], self.options.causal_tol)
        metrics = score(settings, logits, keep)
        metrics["mixer_params"] = float(report["mixer_params"])
        metrics["ms_per_step"] = float(report["ms_per_step"])
        if "lm" in report["tasks"]:
            metrics["lm_tokens_per_s"] = float(report["tasks"]["lm"]["tokens_per_s"])
            metrics["model_params"] = float(report["tasks"]["lm"]["params"])
        runtimes = [Runtime(**t["runtime"]) for t in report["tasks"].values() if t.get("runtime")]
        if runtimes:  # every task trains on the same device; the kernels are the union
            rt = runtimes[0].model_copy(update={"kernels": tuple(sorted({k for r in runtimes for k in r.kernels}))})
            rt.write(workdir)
            metrics.update(rt.metrics())
        # Wall and CPU time (the nested runs included: they are the worker's children) are measured
        # by the parent around the worker; GPU time is the three runs' wall time when they ran on CUDA.
        gpu_s = sum(r.wall_s for r in (res_train, res_full, res_pre)) if self.uses_gpu(job) else 0.0
        return metrics, Cost(gpu_s=gpu_s)

    def score_nested(self, job: EvalJob, trained: Path, where: Path, what: str, keep: dict[str, Any],
                     hide: tuple[Path, ...], inputs: dict[str, dict[str, tuple[Any, tuple[int, ...]]]]):
        """One scoring process (``runner.py score``) in the directory ``where`` on
        ``inputs[task][key]``: (token windows, expected logits shape); its record is
        ``sandbox_<what>.json`` beside ``where``. Returns the checked logits by task and key, and
        how the run ended. Its directory, the inputs with it, is removed when it ends: nothing in
        it outlives the run."""
        try:
            remove_tree(where)  # what an earlier attempt of this evaluation left
            prepare_scoring(job, trained, where, keep,
                            {n: {k: x for k, (x, _) in ins.items()} for n, ins in inputs.items()})
            res, nested = self.run_nested(job, where, "score", hide=tuple(h for h in hide if h != where))
            record(res, where.parent / f"sandbox_{what}.json")
            self.raise_failure(res, nested, where / "out", done="scored.json")
            return {n: {k: load_logits(where, n, k, shape) for k, (_, shape) in ins.items()}
                    for n, ins in inputs.items()}, res
        finally:
            remove_tree(where)

    def run_nested(self, job: EvalJob, where: Path, mode: str, hide: tuple[Path, ...]):
        """One nested run of ``runner.py mode`` through the candidate harness (its timeout rule)."""
        nested = candidate_limits(SandboxLimits(**job.limits), self.options.candidate_timeout_s)
        if self.uses_gpu(job):  # CUDA maps far more address space than it uses (docs/sandbox.md)
            nested = nested.model_copy(update={"memory_mb": CUDA_ADDRESS_SPACE_MB})
        return run_candidate([sys.executable, str(RUNNER), mode], where, nested, hide=hide), nested

    @staticmethod
    def raise_failure(res, nested: SandboxLimits, out: Path, done: str) -> None:
        err = out / "error.json"
        if err.is_file() and not err.is_symlink() and not res.timed_out:
            e = json.loads(err.read_text())
            last = [ln for ln in e["error"].strip().splitlines() if ln.strip()]
            raise DesignRejected(f"{e['stage']} failed: {last[-1] if last else 'unknown error'}\n{e['error']}")
        if res.timed_out or res.returncode != 0 or not (out / done).is_file():
            raise DesignRejected(f"the design failed: {explain(res, nested)}")

    def uses_gpu(self, job: EvalJob) -> bool:
        return wants_cuda(options_with_defaults(job.domain_options)["device"])
