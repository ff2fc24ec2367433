"""The SQLite store: exact read-back, concurrent writers, schema versions."""

import multiprocessing as mp
import sqlite3

import pytest

from cambrian import Candidate, Cost, EvalOutcome, Metric, Node, NodeStatus, Store
from cambrian.core.errors import StoreError


def _node(i: int, agent: str = "a") -> Node:
    return Node(id=f"{agent}-{i}", agent=agent, operator="draft", parents=(f"{agent}-{i - 1}",) if i else (),
                candidate=Candidate(kind="vector", content=[i, 0.5], meta={"note": "x"}))


def test_nodes_read_back_exactly_after_reopen(tmp_path):
    s = Store(tmp_path)
    n = _node(0)
    s.add_node(n)
    done = s.record_outcome(EvalOutcome(node_id=n.id, status=NodeStatus.DONE,
                                        metrics={"loss": Metric(name="loss", value=1.25)},
                                        cost=Cost(wall_s=2.0, flops=1e9)))
    s.log_llm_call("a", "llm-draft", "m", 10, 5, 0.01, True)
    s.close()
    s2 = Store(tmp_path, create=False)
    back = s2.node(n.id)
    assert back == done
    assert back.metrics["loss"].value == 1.25 and back.cost.flops == 1e9
    assert s2.llm_calls()[0]["prompt_tokens"] == 10
    kinds = [e["kind"] for e in s2.events()]
    assert kinds == ["node_created", "node_done"]


def test_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="no campaign store"):
        Store(tmp_path / "nope", create=False)


def test_newer_schema_is_refused(tmp_path):
    Store(tmp_path).close()
    con = sqlite3.connect(tmp_path / Store.FILENAME)
    con.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer than this Cambrian"):
        Store(tmp_path)


def _writer(path: str, agent: str, n: int) -> None:
    s = Store(path)
    for i in range(n):
        s.add_node(_node(i, agent))
        s.set_status(f"{agent}-{i}", NodeStatus.RUNNING)
        s.log_event("tick", agent=agent, i=i)
    s.close()


def test_several_processes_write_one_store(tmp_path):
    Store(tmp_path).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), f"w{k}", 40)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    s = Store(tmp_path)
    nodes = s.nodes()
    assert len(nodes) == 160
    assert all(n.status == NodeStatus.RUNNING for n in nodes)
    assert len(s.events("tick")) == 160
    assert s._query("PRAGMA integrity_check")[0][0] == "ok"
    assert s._query("PRAGMA journal_mode")[0][0] == "wal"
