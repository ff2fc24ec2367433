"""Runs one mixer design inside the sandbox, in one of two separate processes.

``python runner.py train`` (the training process): the harness (the ``attention`` evaluator)
writes ``mixer.py`` (the candidate), ``config.json``, ``probe.npz`` and one ``<task>.npz`` of
training data per task. This imports the design, runs the causality probes, measures its cost,
trains a small model per task and saves its weights (``out/<task>.pt``, a state dict) and a
report. It never receives evaluation inputs, of the val split or the hidden one.

``python runner.py score`` (a scoring process, a fresh sandbox and uid in a fresh directory that
the training process never sees): the harness writes the candidate's source (its own copy, not
the training directory's), ``config.json``, the trained weights (loaded as data,
``weights_only``) and ``<task>_inputs.npz``: arrays of token windows to run the model on. This
saves raw logits only, one ``out/<task>.<key>.npy`` per array. It has no targets, computes no
metric and is not told what the inputs are for. The harness runs it twice per evaluation, each
a separate process: once on all evaluation windows (in a random order) and once on the
prefixes it re-scores (one per row, each cut after its t, no window in full), so the
prefix passes run on a model that never saw what follows a prefix; it checks causality and
computes the loss from these logits and labels it kept to itself.

A failure writes ``out/error.json`` with the stage it happened in.
"""

import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from cambrian.architectures import ArchSpec, build_model, register_primitive
from cambrian.plugins.domains.attention.primitive import MixerPrimitive, load_mixer_class
from cambrian.scaling.data import LMBatches
from cambrian.scaling.device import resolve_device
from cambrian.scaling.trainer import TrainConfig, train

OUT = Path("out")


def fail(stage: str, message: str) -> None:
    (OUT / "error.json").write_text(json.dumps({"stage": stage, "error": message[-3000:]}))
    sys.exit(3)


def build_lm(mixer_path: str, cfg: dict, vocab: int, seq_len: int, seed: int):
    register_primitive(MixerPrimitive("candidate", mixer_path), replace=True)
    layers = []
    for _ in range(cfg["n_layers"]):
        layers += [{"primitive": "candidate", "options": {"n_heads": cfg["n_heads"]}}, {"primitive": "swiglu"}]
    spec = ArchSpec.from_dict({"d_model": cfg["d_model"], "vocab_size": vocab, "max_seq_len": seq_len,
                               "pos": "none", "layers": layers})
    return build_model(spec, seed=seed)


def setup():
    OUT.mkdir(exist_ok=True)
    cfg = json.loads(Path("config.json").read_text())
    torch.set_num_threads(int(cfg.get("threads", 1)))
    torch.manual_seed(cfg["seed"])
    return cfg, resolve_device(cfg.get("device", "cpu"))  # here, in the sandbox: CUDA starts in this process


def score() -> int:
    """Logits of the trained models on every array of token windows the harness gave."""
    cfg, device = setup()
    for name, t in cfg["tasks"].items():
        data = np.load(f"{name}_inputs.npz")
        try:
            model = build_lm("mixer.py", cfg, t["vocab"], t["seq_len"], cfg["seed"]).to(device)
            model.load_state_dict(torch.load(f"{name}.pt", map_location=device, weights_only=True))
            model.eval()
            chunk = int(cfg.get("eval_chunk", 64))
            with torch.no_grad():
                for key in data.files:
                    xs = torch.from_numpy(data[key]).to(device)
                    logits = torch.cat([model(xs[i:i + chunk]).float().cpu() for i in range(0, len(xs), chunk)])
                    np.save(OUT / f"{name}.{key}.npy", logits.numpy())
        except Exception:
            fail(f"score:{name}", traceback.format_exc(limit=-4))
    (OUT / "scored.json").write_text(json.dumps({"tasks": list(cfg["tasks"])}))
    return 0


def main() -> int:
    cfg, device = setup()
    report: dict = {}
    try:
        Mixer = load_mixer_class("mixer.py")  # relative: the sandbox's /tmp is private
        mixer = Mixer(cfg["d_model"], cfg["n_heads"]).to(device)
    except Exception:
        fail("import", traceback.format_exc(limit=-4))

    probe = np.load("probe.npz")
    try:
        mixer.eval()
        ys = {}
        with torch.no_grad():
            for i in range(len(probe.files) // 2):  # the harness's causality probes, shape by shape
                for ab in ("a", "b"):
                    y = mixer(torch.from_numpy(probe[f"x_{ab}{i}"]).to(device))
                    if not isinstance(y, torch.Tensor):
                        raise TypeError(f"forward returned {type(y).__name__}, not a tensor")
                    ys[f"y_{ab}{i}"] = y.float().cpu().numpy()
        np.savez(OUT / "probe_out.npz", **ys)
    except Exception:
        fail("forward", traceback.format_exc(limit=-4))

    report["mixer_params"] = sum(p.numel() for p in mixer.parameters())
    # measured cost: forward + backward of one mixer on a [batch, seq, d_model] input
    x = torch.randn(cfg["cost_batch"], cfg["cost_seq"], cfg["d_model"], device=device, requires_grad=True)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    try:
        mixer.train()
        mixer(x).sum().backward()  # warm-up
        sync()
        t0 = time.perf_counter()
        for _ in range(3):
            mixer(x).sum().backward()
        sync()
        report["ms_per_step"] = 1000 * (time.perf_counter() - t0) / 3
    except Exception:
        fail("backward", traceback.format_exc(limit=-4))

    report["tasks"] = {}
    for name, t in cfg["tasks"].items():
        data = np.load(f"{name}.npz")
        try:
            model = build_lm("mixer.py", cfg, t["vocab"], t["seq_len"], cfg["seed"])
            if name == "lm":
                tokens = data["train_tokens"]
                batches = LMBatches(tokens, t["batch_size"], t["seq_len"], seed=cfg["seed"])
            else:
                xs, ys = data["train_inputs"], data["train_targets"]
                bs = t["batch_size"]

                def batches(i, xs=xs, ys=ys, bs=bs):
                    rows = np.random.default_rng([cfg["seed"], i]).integers(0, len(xs), bs)
                    return xs[rows], ys[rows]
            tc = TrainConfig(lr=t["lr"], max_steps=t["steps"], warmup_steps=max(1, t["steps"] // 10),
                             threads=int(cfg.get("threads", 1)), device=str(device), precision="auto",
                             seed=cfg["seed"], log_every=max(1, t["steps"] // 5))
            res = train(model, batches, tc)
            report["tasks"][name] = {"status": res.status, "reason": res.stop_reason, "steps": res.steps,
                                     "tokens_per_s": res.tokens_per_s, "train_loss": res.train_loss,
                                     "params": sum(p.numel() for p in model.parameters()),
                                     "runtime": res.runtime}
            torch.save(model.state_dict(), OUT / f"{name}.pt")  # the artifact the scoring process loads
        except Exception:
            fail(f"train:{name}", traceback.format_exc(limit=-4))
    (OUT / "report.json").write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(score() if sys.argv[1:] == ["score"] else main())
