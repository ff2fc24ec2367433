"""Event hooks observe a real campaign; collection hooks feed the registry."""

from cambrian import Campaign, NodeStatus, hookimpl
from cambrian.core.plugins import get_plugin_manager

from ..conftest import toy_config


class Recorder:
    def __init__(self):
        self.calls = []

    @hookimpl
    def cambrian_campaign_start(self, run_dir, config):
        self.calls.append(("start", config["name"]))

    @hookimpl
    def cambrian_node_evaluated(self, run_dir, node):
        self.calls.append(("node", node.id, node.status))

    @hookimpl
    def cambrian_campaign_end(self, run_dir, reason, summary):
        self.calls.append(("end", reason, summary["best"]))


def test_event_hooks_see_every_node(tmp_path, fresh_pm):
    rec = Recorder()
    fresh_pm.register(rec, "recorder")
    try:
        result = Campaign.from_config(toy_config(), tmp_path / "r").run()
    finally:
        fresh_pm.unregister("recorder")
    assert rec.calls[0] == ("start", "t")
    nodes = [c for c in rec.calls if c[0] == "node"]
    assert len(nodes) == 6 and all(c[2] == NodeStatus.DONE for c in nodes)
    assert rec.calls[-1] == ("end", "max_nodes", result.best.id)


def test_collection_hooks_cover_every_builtin_kind(fresh_pm):
    # cambrian_scaffolds, cambrian_operators, cambrian_evaluators, cambrian_domains and
    # cambrian_executors each feed a registry table.
    reg = get_plugin_manager().registry()
    for kind, name in [("scaffold", "random"), ("operator", "vector-perturb"), ("evaluator", "toy"),
                       ("domain", "toy"), ("executor", "local")]:
        assert name in reg[kind]
