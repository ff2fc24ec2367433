"""The durable record of a campaign: SQLite in WAL mode.

Every node, status change, metric, cost and event is committed before the
engine acts on it, so a campaign killed at any instant can be reopened and
read back exactly. Several processes may write one store: each write is a
short ``BEGIN IMMEDIATE`` transaction, with a busy timeout and retries, so
writers queue instead of failing with ``database is locked``.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from cambrian.core.errors import StoreError
from cambrian.core.records import Cost, EvalOutcome, Node, NodeStatus

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    agent TEXT NOT NULL,
    phase TEXT NOT NULL,
    status TEXT NOT NULL,
    candidate_hash TEXT NOT NULL,
    record TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS nodes_agent ON nodes(agent);
CREATE INDEX IF NOT EXISTS nodes_status ON nodes(status);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    agent TEXT,
    node_id TEXT,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS llm_calls (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    agent TEXT NOT NULL,
    operator TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    ok INTEGER NOT NULL,
    error TEXT
);
"""


class Store:
    """A campaign's SQLite store. Safe to share between threads of one process."""

    FILENAME = "store.sqlite"

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        path = Path(path)
        if path.is_dir() or path.suffix != ".sqlite":  # a run directory (its name may hold a dot)
            path = path / self.FILENAME
        if not create and not path.exists():
            raise StoreError(f"no campaign store at {path}; check the run directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")  # durable across process kills in WAL mode
        self._conn.execute("PRAGMA busy_timeout=60000")
        self._migrate()

    # -- transactions ------------------------------------------------------------------

    def _tx(self) -> "_Tx":
        return _Tx(self)

    def _migrate(self) -> None:
        with self._tx() as c:
            for stmt in _SCHEMA.strip().split(";"):
                if stmt.strip():
                    c.execute(stmt)
            row = c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                c.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise StoreError(
                    f"store {self.path} has schema v{row[0]}, newer than this Cambrian (v{SCHEMA_VERSION}); "
                    "upgrade cambrian"
                )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- meta ------------------------------------------------------------------------------

    def set_meta(self, key: str, value: Any) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._query("SELECT value FROM meta WHERE key=?", (key,))
        return json.loads(row[0][0]) if row else default

    # -- nodes -----------------------------------------------------------------------------

    def add_node(self, node: Node) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT INTO nodes (id, agent, phase, status, candidate_hash, record, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (node.id, node.agent, node.phase, node.status.value, node.candidate.hash,
                 node.model_dump_json(), node.updated_at),
            )
            self._event(c, "node_created", node.agent, node.id, {"operator": node.operator,
                                                                   "parents": list(node.parents)})

    def update_node(self, node: Node, event: str | None = None, payload: dict | None = None) -> Node:
        node = node.model_copy(update={"updated_at": time.time()})
        with self._tx() as c:
            cur = c.execute(
                "UPDATE nodes SET status=?, record=?, updated_at=? WHERE id=?",
                (node.status.value, node.model_dump_json(), node.updated_at, node.id),
            )
            if cur.rowcount != 1:
                raise StoreError(f"node {node.id} is not in the store")
            self._event(c, event or f"node_{node.status.value}", node.agent, node.id, payload or {})
        return node

    def set_status(self, node_id: str, status: NodeStatus, **updates: Any) -> Node:
        node = self.node(node_id)  # read inside the store: another process may have written it
        return self.update_node(node.model_copy(update={"status": status, **updates}))

    def record_outcome(self, outcome: EvalOutcome) -> Node:
        node = self.node(outcome.node_id)
        node = node.model_copy(update={
            "status": outcome.status, "metrics": outcome.metrics,
            "cost": node.cost + outcome.cost, "error": outcome.error,
        })
        payload = {k: v for k, v in (("error", outcome.error), ("artifacts", outcome.artifacts)) if v}
        return self.update_node(node, payload=payload)  # sandbox warnings travel in artifacts

    def node(self, node_id: str) -> Node:
        rows = self._query("SELECT record FROM nodes WHERE id=?", (node_id,))
        if not rows:
            raise StoreError(f"node {node_id} is not in the store")
        return Node.model_validate_json(rows[0][0])

    def nodes(self, *, agent: str | None = None, phase: str | None = None,
              status: NodeStatus | None = None, candidate_hash: str | None = None) -> list[Node]:
        """Nodes in creation order, optionally filtered."""
        sql, args = "SELECT record FROM nodes WHERE 1=1", []
        for col, val in (("agent", agent), ("phase", phase), ("status", status.value if status else None),
                         ("candidate_hash", candidate_hash)):
            if val is not None:
                sql += f" AND {col}=?"
                args.append(val)
        return [Node.model_validate_json(r[0]) for r in self._query(sql + " ORDER BY seq", args)]

    def count_nodes(self, *, agent: str | None = None, phase: str = "search") -> int:
        sql, args = "SELECT COUNT(*) FROM nodes WHERE phase=?", [phase]
        if agent is not None:
            sql += " AND agent=?"
            args.append(agent)
        return int(self._query(sql, args)[0][0])

    def total_cost(self, *, agent: str | None = None) -> Cost:
        total = Cost()
        for n in self.nodes(agent=agent):
            total = total + n.cost
        return total

    # -- events, llm calls ---------------------------------------------------

    def log_event(self, kind: str, *, agent: str | None = None, node_id: str | None = None,
                  **payload: Any) -> None:
        with self._tx() as c:
            self._event(c, kind, agent, node_id, payload)

    @staticmethod
    def _event(c: sqlite3.Connection, kind: str, agent: str | None, node_id: str | None,
               payload: dict) -> None:
        c.execute("INSERT INTO events (ts, kind, agent, node_id, payload) VALUES (?, ?, ?, ?, ?)",
                  (time.time(), kind, agent, node_id, json.dumps(payload, default=str)))

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT seq, ts, kind, agent, node_id, payload FROM events"
        rows = self._query(sql + (" WHERE kind=?" if kind else "") + " ORDER BY seq", (kind,) if kind else ())
        return [dict(seq=r[0], ts=r[1], kind=r[2], agent=r[3], node_id=r[4], payload=json.loads(r[5]))
                for r in rows]

    def log_llm_call(self, agent: str, operator: str, model: str, prompt_tokens: int,
                     completion_tokens: int, cost_usd: float, ok: bool, error: str | None = None) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT INTO llm_calls (ts, agent, operator, model, prompt_tokens, completion_tokens,"
                " cost_usd, ok, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time(), agent, operator, model, prompt_tokens, completion_tokens, cost_usd,
                 int(ok), error),
            )

    def llm_calls(self) -> list[dict[str, Any]]:
        cols = ["ts", "agent", "operator", "model", "prompt_tokens", "completion_tokens", "cost_usd", "ok", "error"]
        rows = self._query(f"SELECT {', '.join(cols)} FROM llm_calls ORDER BY seq")
        return [dict(zip(cols, r)) for r in rows]

    # -- plumbing --------------------------------------------------------------------------

    def _query(self, sql: str, args: Any = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()


class _Tx:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` with retries on lock contention."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        self.store._lock.acquire()
        conn = self.store._conn
        for attempt in range(200):
            try:
                conn.execute("BEGIN IMMEDIATE")
                return conn
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    self.store._lock.release()
                    raise
                time.sleep(min(0.5, 0.005 * (attempt + 1)) * random.uniform(0.5, 1.5))
        self.store._lock.release()
        raise StoreError(f"store {self.store.path} stayed locked; is another process stuck?")

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        conn = self.store._conn
        try:
            conn.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.store._lock.release()

