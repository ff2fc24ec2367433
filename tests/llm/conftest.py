from __future__ import annotations

from pathlib import Path

CASSETTES = Path(__file__).resolve().parents[1] / "data" / "cassettes"


def llm_toy_config(llm: dict, **over) -> dict:
    """A toy campaign (dim 3, sphere) whose one agent drafts and improves with an LLM."""
    cfg = {
        "name": "llm", "seed": 0,
        "domain": {"name": "toy", "options": {"dim": 3, "function": "sphere", "noise": 0.0}},
        "executor": {"name": "local", "options": {"workers": 1}},
        "budget": {"max_nodes": 5},
        "agents": [{"name": "a", "scaffold": {"name": "random", "options": {"n_drafts": 2, "p_draft": 0.0}},
                    "operators": ["llm-draft", "llm-improve"], "llm": llm, "persona": "You like small numbers."}],
    }
    cfg.update(over)
    return cfg


def scripted_reply(body: dict) -> str:
    """The fake server's replies for the toy campaign: one malformed reply, repaired on request."""
    import json
    import re

    user = body["messages"][-1]["content"]
    if "could not be used" in user:
        return "Sorry. Fixed:\n```json\n[0.5, -0.25, 0.125]\n```"
    if "Candidate to improve" in user:
        block = re.search(r"Candidate to improve.*?```json\n(.*?)```", user, re.DOTALL).group(1)
        halved = [round(v / 2, 6) for v in json.loads(block)]
        return f"Halve every coordinate.\n```json\n{json.dumps(halved)}\n```"
    if "Leaderboard" in user:
        return "I would try small values like [0.5, 0.5] but forgot the block."  # malformed on purpose
    return "A first guess.\n```json\n[2.0, 2.0, 2.0]\n```"
