"""``cambrian export RUN NODE --out DIR``: a node's trained model as a transformers directory.

The compose evaluator saves every trained model (``model.pt``: the spec, the
state_dict, the seed and the training settings) in its evaluation's work folder,
``RUN/evals/NODE/work/``. Export loads it, wraps it with
:func:`cambrian.architectures.hf.to_hf` and calls ``save_pretrained``: the folder
loads with ``AutoModelForCausalLM.from_pretrained(DIR, trust_remote_code=True)``
wherever the ``cambrian`` package is installed. When the file is missing (an
evaluation run with ``save_model: false``, or a pruned run folder), export
re-trains the node first, with its recorded seed, split and training settings
(the job file of its evaluation), and keeps the result in the same place.
"""

from __future__ import annotations

import json
from pathlib import Path

from cambrian.core.errors import CambrianError
from cambrian.plugins.domains.compose.evaluator import MODEL_FILE, TRAINING_KEYS, run_proxy


def _retrain(run_dir: Path, node, domain_options: dict, workdir: Path) -> None:
    from cambrian.plugins.domains.compose.domain import settings

    job_file = run_dir / "evals" / node.id / "job.json"
    job = json.loads(job_file.read_text()) if job_file.is_file() else {}
    extra = {k: v for k, v in job.get("evaluator_options", {}).items() if k in TRAINING_KEYS}
    s = {**settings(job.get("domain_options", domain_options)), **extra}
    workdir.mkdir(parents=True, exist_ok=True)
    threads = (job.get("limits") or {}).get("threads", 1)  # as the evaluation ran: same float sums
    run_proxy(node.candidate.content, s, split=node.split, seed=node.seed, workdir=workdir,
              run_dir=run_dir, threads=threads)


def export_node(run_dir: str | Path, node_id: str, out: str | Path) -> Path:
    """Write node ``node_id`` of the campaign in ``run_dir`` to ``out``; returns ``out``."""
    import torch

    from cambrian.architectures import build_model
    from cambrian.architectures.hf import to_hf
    from cambrian.core.store import Store

    run_dir, out = Path(run_dir), Path(out)
    store = Store(run_dir, create=False)
    try:
        matches = [n for n in store.nodes() if n.id.startswith(node_id)]
        config = store.get_meta("config") or {}
    finally:
        store.close()
    if len(matches) != 1:
        raise CambrianError(f"{'no' if not matches else 'more than one'} node matches {node_id!r} in {run_dir}")
    node = matches[0]
    if node.candidate.kind != "spec":
        raise CambrianError(f"node {node.id} is a {node.candidate.kind!r} candidate; only architecture "
                            "specs export as transformers models")
    workdir = run_dir / "evals" / node.id / "work"
    if not (workdir / MODEL_FILE).is_file():
        _retrain(run_dir, node, (config.get("domain") or {}).get("options", {}), workdir)
    saved = torch.load(workdir / MODEL_FILE, map_location="cpu", weights_only=False)
    model = build_model(saved["spec"], seed=int(saved.get("seed", 0)))
    model.load_state_dict(saved["state_dict"])
    out.mkdir(parents=True, exist_ok=True)
    to_hf(model).save_pretrained(out)
    (out / "cambrian_node.json").write_text(json.dumps({
        "run_dir": str(run_dir.resolve()), "node": node.id, "agent": node.agent, "phase": node.phase,
        "split": node.split, "seed": node.seed, "metrics": {k: m.value for k, m in node.metrics.items()},
        "spec": saved["spec"]}, indent=1))
    return out
