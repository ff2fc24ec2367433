"""Tiny compose settings shared by the compose tests (seconds per candidate)."""

from __future__ import annotations

from typing import Any

TINY_DOMAIN = {"d_model": 32, "n_layers": 4, "seq_len": 64, "batch_size": 8, "train_tokens": 12_000,
               "val_tokens": 4_096, "mqar_steps": 10, "warmup_steps": 5}


def tiny_config(name: str = "tiny", agents: int = 2, max_nodes: int = 6, **phases: Any) -> dict[str, Any]:
    scaffolds = [("greedy", {"n_drafts": 2}), ("evolutionary", {"population": 3})]
    return {
        "name": name, "seed": 0,
        "domain": {"name": "compose", "options": dict(TINY_DOMAIN)},
        "executor": {"name": "local", "options": {"workers": 2}},
        "sandbox": {"threads": 1, "timeout_s": 300},
        "budget": {"max_nodes": max_nodes},
        "agents": [{"name": s, "scaffold": {"name": s, "options": o}} for s, o in scaffolds[:agents]],
        "phases": phases or {
            "aggregation": {"top": 4, "radius": 4},
            "scaling": {"top_k": 1, "baselines": ["llama"],
                        "ladder": [{"name": "proxy"},
                                   {"name": "x2", "d_model": 48, "depth": 2, "train_tokens": 16_000}]},
            "hidden": {"top_k": 1, "seeds": 2, "baselines": ["llama"]},
        },
    }
