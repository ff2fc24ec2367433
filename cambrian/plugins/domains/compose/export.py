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

The folder also holds the byte-level tokenizer (``tokenizer.json``), so
``AutoTokenizer.from_pretrained(DIR)`` and lm-eval's ``hf`` model work on it. A
spec naming a primitive from a pip-installed plugin exports with that plugin
named in ``config.json`` (``cambrian_requires``) and loads through its entry point;
a primitive that no installed distribution provides (registered at run time, or a
design from ``cambrian attention register``) is refused with one line.
"""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

# torch and transformers at the top: only the export command imports this module
import torch

from cambrian.architectures import build_model
from cambrian.architectures.hf import byte_tokenizer, to_hf
from cambrian.architectures.primitives.builtin import BUILTIN_PRIMITIVES
from cambrian.core.errors import CambrianError
from cambrian.core.plugins import get_plugin_manager
from cambrian.core.store import Store
from cambrian.plugins.domains.compose.domain import settings
from cambrian.plugins.domains.compose.evaluator import MODEL_FILE, TRAINING_KEYS, run_proxy


def _retrain(run_dir: Path, node, domain_options: dict, workdir: Path) -> None:
    job_file = run_dir / "evals" / node.id / "job.json"
    job = json.loads(job_file.read_text()) if job_file.is_file() else {}
    extra = {k: v for k, v in job.get("evaluator_options", {}).items() if k in TRAINING_KEYS}
    s = {**settings(job.get("domain_options", domain_options)), **extra}
    workdir.mkdir(parents=True, exist_ok=True)
    threads = (job.get("limits") or {}).get("threads", 1)  # as the evaluation ran: same float sums
    run_proxy(node.candidate.content, s, split=node.split, seed=node.seed, workdir=workdir,
              run_dir=run_dir, threads=threads)


def primitive_requirements(spec: dict) -> list[dict[str, str]]:
    """The plugins a spec's primitives come from; refuses primitives no distribution provides."""
    builtin = {p.name for p in BUILTIN_PRIMITIVES}
    registry = get_plugin_manager().registry()["primitive"]
    dists = {ep.name: ep.dist for ep in entry_points(group="cambrian") if ep.dist is not None}
    out: dict[str, dict[str, str]] = {}
    for layer in spec["layers"]:
        name = layer["primitive"] if isinstance(layer, dict) else str(layer)
        if name in builtin or name in out:
            continue
        reg = registry.get(name)
        dist = dists.get(reg.plugin) if reg is not None else None
        if dist is None or dist.name == "cambrian":
            where = ("a design registered in this machine's primitives folder" if reg is not None
                     else "registered at run time, not by an installed plugin")
            raise CambrianError(f"cannot export: primitive {name!r} is {where}; only built-in primitives "
                                "and those of pip-installed plugins export (package it as a plugin)")
        out[name] = {"primitive": name, "plugin": reg.plugin, "distribution": dist.name,
                     "version": dist.version}
    return list(out.values())


def write_export(model, out: str | Path, info: dict | None = None) -> Path:
    """Save a built model as a transformers folder with its tokenizer; ``info`` -> cambrian_node.json."""
    spec = model.spec.to_dict()
    requires = primitive_requirements(spec)  # refuse before anything is written
    if spec["vocab_size"] != 256:
        raise CambrianError(f"cannot export: vocab_size {spec['vocab_size']} is not the byte-level 256, "
                            "and no other tokenizer is known for this model")
    out = Path(out)
    hf = to_hf(model)
    hf.config.cambrian_requires = requires
    tok = byte_tokenizer()
    hf.config.eos_token_id = hf.config.pad_token_id = tok.eos_token_id
    hf.generation_config.eos_token_id = hf.generation_config.pad_token_id = tok.eos_token_id
    out.mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(out)
    tok.save_pretrained(out)
    if info is not None:
        (out / "cambrian_node.json").write_text(json.dumps(info, indent=1))
    return out


def export_node(run_dir: str | Path, node_id: str, out: str | Path) -> Path:
    """Write node ``node_id`` of the campaign in ``run_dir`` to ``out``; returns ``out``."""
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
    primitive_requirements(node.candidate.content)  # refuse before any re-training
    workdir = run_dir / "evals" / node.id / "work"
    if not (workdir / MODEL_FILE).is_file():
        _retrain(run_dir, node, (config.get("domain") or {}).get("options", {}), workdir)
    saved = torch.load(workdir / MODEL_FILE, map_location="cpu", weights_only=False)
    model = build_model(saved["spec"], seed=int(saved.get("seed", 0)))
    model.load_state_dict(saved["state_dict"])
    return write_export(model, out, {
        "run_dir": str(run_dir.resolve()), "node": node.id, "agent": node.agent, "phase": node.phase,
        "split": node.split, "seed": node.seed, "metrics": {k: m.value for k, m in node.metrics.items()},
        "spec": saved["spec"]})
