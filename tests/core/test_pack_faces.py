"""The faces of a pack: cambrian_commands and cambrian_report_sections, through the real CLI,
a real campaign and the real report; the core CLI and the reporting plugin name no pack."""

import ast
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cambrian import Campaign, ReportSection, hookimpl
from cambrian.cli import add_plugin_commands, app
from cambrian.core.errors import CambrianError
from cambrian.plugins.reporting.report import write_report

ROOT = Path(__file__).resolve().parents[2] / "cambrian"


def test_the_packs_commands_come_through_cambrian_commands():
    names = {c.name or c.callback.__name__ for c in app.registered_commands}
    groups = {g.name for g in app.registered_groups}
    assert "export" in names and {"attention", "script"} <= groups
    res = CliRunner().invoke(app, ["script", "--help"])
    assert res.exit_code == 0 and "results" in res.output


def test_a_command_name_taken_twice_names_both_plugins(fresh_pm):
    class Clash:
        @hookimpl
        def cambrian_commands(self, app):
            @app.command("export")
            def export_again():
                pass

    fresh_pm.register(Clash(), "clash")
    try:
        with pytest.raises(CambrianError, match="'domains.compose' and 'clash' both add the command 'export'"):
            add_plugin_commands(typer.Typer(), fresh_pm)
    finally:
        fresh_pm.unregister("clash")


def test_a_report_section_replaces_the_generic_view_of_its_phase(fresh_pm, tmp_path):
    class Section:
        @hookimpl
        def cambrian_report_sections(self, run_dir, config, phases):
            assert config["domain"]["name"] == "toy" and "hidden" in phases
            return [ReportSection(title="Seeds at a glance", html="<p id='mine'>mine</p>", phases=("hidden",))]

    cfg = {"name": "s", "domain": {"name": "toy", "options": {"dim": 2}}, "budget": {"max_nodes": 3},
           "phases": {"hidden": {"top_k": 1, "seeds": 1}},
           "agents": [{"name": "a", "scaffold": "random"}]}
    Campaign.from_config(cfg, tmp_path / "r").run()
    plain = write_report(tmp_path / "r").read_text()
    fresh_pm.register(Section(), "section")
    try:
        page = write_report(tmp_path / "r").read_text()
    finally:
        fresh_pm.unregister("section")
    assert "<h2>Hidden evaluation</h2>" in plain and "Seeds at a glance" not in plain
    assert "<h2>Seeds at a glance</h2>" in page and "<p id='mine'>mine</p>" in page
    assert "<h2>Hidden evaluation</h2>" not in page  # the section shows that phase instead


@pytest.mark.parametrize("path", [ROOT / "cli.py", *sorted((ROOT / "plugins" / "reporting").rglob("*.py"))],
                         ids=lambda p: p.name)
def test_the_cli_and_reporting_import_no_pack(path):
    tree = ast.parse(path.read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m.startswith("cambrian.plugins.domains")]
