"""The ``script`` domain pack: improve a task folder's script (see domain.py, docs/script-tasks.md).

Registers the ``script`` domain and evaluator and the ``keep-discard``
scaffold, records a ``script_decision`` event for every evaluated search node
of a script campaign, writes the keep/discard fragment (``results.tsv``,
``results.html``) into the run directory when the campaign ends, shows the same
history as its section of the report, and adds ``cambrian script results``
(commands.py). No torch at import.
"""

from __future__ import annotations

from typing import Any

from cambrian import ReportSection, Store, hookimpl
from cambrian.plugins.domains import commands_from
from cambrian.plugins.domains.script.domain import ScriptDomain, task_from_options
from cambrian.plugins.domains.script.evaluator import ScriptEvaluator
from cambrian.plugins.domains.script.history import decide, history_html, write_results
from cambrian.plugins.domains.script.scaffold import KeepDiscardScaffold


@hookimpl
def cambrian_domains():
    return [ScriptDomain]


@hookimpl
def cambrian_evaluators():
    return [ScriptEvaluator]


@hookimpl
def cambrian_scaffolds():
    return [KeepDiscardScaffold]


def _is_script_campaign(store: Any) -> dict | None:
    config = store.get_meta("config") or {}
    return config if config.get("domain", {}).get("name") == "script" else None


_OTHER_RUNS: set[str] = set()  # run dirs known not to be script campaigns: skip them cheaply


@hookimpl
def cambrian_node_evaluated(run_dir: str, node: Any) -> None:
    if node.phase != "search" or run_dir in _OTHER_RUNS:
        return
    store = Store(run_dir, create=False)
    try:
        config = _is_script_campaign(store)
        if config is None:
            _OTHER_RUNS.add(run_dir)
            return
        objective = task_from_options(config["domain"].get("options", {})).objective_spec
        for d in decide(store.nodes(agent=node.agent, phase="search"), objective):
            if d.node_id == node.id:
                payload = {k: v for k, v in d.to_dict().items() if k not in ("agent", "node_id")}
                store.log_event("script_decision", agent=node.agent, node_id=node.id, **payload)
    finally:
        store.close()


@hookimpl
def cambrian_campaign_end(run_dir: str, reason: str, summary: dict) -> None:
    store = Store(run_dir, create=False)
    try:
        script = _is_script_campaign(store) is not None
    finally:
        store.close()
    if script:
        write_results(run_dir)


cambrian_commands = commands_from("cambrian.plugins.domains.script.commands")


@hookimpl
def cambrian_report_sections(run_dir: str, config: dict, phases: dict) -> list[ReportSection]:
    """The keep/discard history per agent, as in autoresearch's results table."""
    if config.get("domain", {}).get("name") != "script":
        return []
    write_results(run_dir)
    return [ReportSection(title="Keep / discard history", html=history_html(run_dir))]
