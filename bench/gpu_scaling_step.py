"""One scaling step of a campaign config on the GPU: its baselines trained at a ladder rung.

Takes the compose campaign config (``examples/compose-gpu.yaml``), its scaling phase's rung
(the last one unless ``--rung``), and evaluates each baseline of that phase at the rung the way
the campaign does: the rung's spec and evaluator options, an evaluation job run by a sandboxed
worker forked from the fork server (which never starts CUDA itself), the compose evaluator
training on the rung's device in bf16 with the fused kernels, checkpointing as the rung says.
``--train-tokens`` shortens the budget (the rung's own is Chinchilla-sized: hours per design).
Each design is then run a second time under the same node id: it resumes from its final
checkpoint, trains no further step and must score the same.

Per design: parameters, training tokens/s, MFU against the card's bf16 dense peak
(bench/gpu_mfu.py's table), val bits per byte, the kernels it used, GPU seconds.

    python bench/gpu_scaling_step.py --config examples/compose-gpu.yaml --train-tokens 4e6
    python bench/gpu_scaling_step.py --config examples/compose-gpu.yaml --device cpu --tiny
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpu_mfu import card_peak

from cambrian import Candidate, EvalJob, NodeStatus
from cambrian.execution.evaluation import finish_job, start_job
from cambrian.execution.forkserver import DEFAULT_PRELOAD, ForkServer
from cambrian.plugins.domains.compose.domain import ComposeDomain
from cambrian.plugins.domains.compose.phases import rung_options, rung_spec

TINY = {"d_model": 64, "n_layers": 4, "seq_len": 64, "batch_size": 4, "train_tokens": 8192,
        "val_tokens": 2048, "checkpoint_every": 8}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="examples/compose-gpu.yaml")
    ap.add_argument("--rung", default=None, help="a rung name of the scaling ladder (default: the last)")
    ap.add_argument("--device", default=None, help="override the rung's device")
    ap.add_argument("--train-tokens", type=float, default=None, help="override the rung's token budget")
    ap.add_argument("--baselines", default=None, help="comma list (default: the scaling phase's baselines)")
    ap.add_argument("--tiny", action="store_true", help="tiny dims and budget: the plumbing, on a CPU")
    ap.add_argument("--out", default=None, help="run folder (default: a temporary one, removed)")
    args = ap.parse_args()

    cfg = yaml.safe_load(Path(args.config).read_text())
    domain_options = dict(cfg["domain"].get("options") or {})
    domain = ComposeDomain(**domain_options)
    scaling = cfg.get("phases", {}).get("scaling") or {}
    ladder = scaling.get("ladder") or []
    rung = next((r for r in ladder if r["name"] == args.rung), None) if args.rung else (ladder[-1] if ladder else None)
    if rung is None:
        raise SystemExit(f"{args.config}: no scaling rung {args.rung or ''!r} (rungs: {[r['name'] for r in ladder]})")
    rung = dict(rung)
    if args.tiny:
        rung = {k: v for k, v in rung.items() if k not in ("scale", "preset")}
        rung.update(TINY)
        domain_options.update(TINY)
    if args.device:
        rung["device"] = args.device
    if args.train_tokens:
        rung["train_tokens"] = int(args.train_tokens)
    names = args.baselines.split(",") if args.baselines else list(scaling.get("baselines") or ["llama"])
    refs = domain.baselines()

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="cambrian-scaling-step-"))
    out.mkdir(parents=True, exist_ok=True)
    limits = {"timeout_s": 3600, "threads": 4, **(cfg.get("sandbox") or {})}
    server = ForkServer(preload=list(DEFAULT_PRELOAD) + list(ComposeDomain.preload))
    rows, ok = [], True
    try:
        for name in names:
            spec = rung_spec(refs[name].content, rung)
            job = EvalJob(node_id=f"step-{rung['name']}-{name}", run_dir=str(out), domain="compose",
                          domain_options=domain_options, evaluator="compose", evaluator_options=rung_options(rung),
                          candidate=Candidate(kind="spec", content=spec), limits=limits)
            first = finish_job(job, start_job(job, server))
            runtime = out / "evals" / job.node_id / "work" / "runtime.json"
            rt = json.loads(runtime.read_text()) if first.status == NodeStatus.DONE else {}
            again = finish_job(job, start_job(job, server))  # same node: resumes from its checkpoint
            rows.append((name, first, again, rt))
            ok &= first.status == NodeStatus.DONE and again.status == NodeStatus.DONE
    finally:
        server.close()

    parts, device_name = [], "?"
    for name, first, again, rt in rows:
        if first.status != NodeStatus.DONE:
            parts.append(f"{name} {first.status.value}: {first.error}")
            continue
        m = {k: v.value for k, v in first.metrics.items()}
        device_name = rt["device_name"]
        found = card_peak(device_name) if m.get("on_cuda") else None
        mfu = f"MFU {100 * 3 * m['flops_per_token'] * m['tokens_per_s'] / found[1]:.1f}%" if found else "MFU n/a"
        same = (again.status == NodeStatus.DONE and again.metrics["bpb"].value == m["bpb"]
                and again.metrics["train_tokens"].value == m["train_tokens"])
        parts.append(f"{name} {m['params'] / 1e6:.1f}M {m['train_tokens']:,.0f} tokens {m['tokens_per_s']:,.0f} tok/s "
                     f"{mfu} bpb {m['bpb']:.4f} gpu_s {first.cost.gpu_s:.0f} kernels {','.join(rt['kernels']) or '-'}; "
                     f"re-run from its checkpoint: {'same tokens and bpb' if same else 'DIFFERENT'}")
        ok &= same
    print(f"scaling_step: rung {rung['name']} on {rung.get('device', 'auto')} ({device_name}): " + "; ".join(parts))
    if not args.out:
        shutil.rmtree(out, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
