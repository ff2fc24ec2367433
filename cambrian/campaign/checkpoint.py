"""The coordination checkpoint, read without running the graph (``cambrian show``, the report).

The graph (``cambrian.campaign.coordinator``) writes it; readers need only LangGraph's SQLite
checkpoint reader, not the graph machinery (``langgraph.graph`` and the LangChain it pulls,
about a second to import), and the CLI's other commands need neither.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

GRAPH_FILE = "graph.sqlite"
THREAD = {"configurable": {"thread_id": "campaign"}}


def coordination_state(run_dir: str | Path) -> dict[str, Any]:
    """The checkpoint's coordination state and any pending approval, read without running.

    Returns ``{"insights": [...], "paused": {...}, "slots": {...}, "approvals": {...},
    "awaiting": {phase, cost...} | None}``; empty values for a run without a graph.
    """
    path = Path(run_dir) / GRAPH_FILE
    out: dict[str, Any] = {"insights": [], "paused": {}, "slots": {}, "approvals": {}, "awaiting": None}
    if not path.exists():
        return out
    # here, not at the top: `cambrian --help`, `plugins` and `import cambrian.cli` stay without langgraph
    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = sqlite3.connect(path, check_same_thread=False)
    try:
        tup = SqliteSaver(conn).get_tuple(THREAD)
        if tup is None:
            return out
        values = tup.checkpoint.get("channel_values", {})
        for key in ("insights", "paused", "slots", "approvals"):
            if key in values:
                out[key] = values[key]
        for _, channel, value in tup.pending_writes or []:
            if channel == "__interrupt__":
                for intr in value if isinstance(value, (list, tuple)) else [value]:
                    out["awaiting"] = getattr(intr, "value", intr)
        return out
    finally:
        conn.close()
