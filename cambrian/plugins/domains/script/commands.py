"""The script pack's commands: ``cambrian script results RUN_DIR``."""

from __future__ import annotations

from pathlib import Path

import typer

from cambrian.plugins.domains.cli import console, pack_group
from cambrian.plugins.domains.script.history import results_table, write_results


def register(app: typer.Typer) -> None:
    script_app = pack_group(app, "script", "The script pack: keep/discard history of a script campaign.")

    @script_app.command("results")
    def script_results(run_dir: Path = typer.Argument(..., help="Run directory of a script campaign.")) -> None:
        """Write results.tsv and results.html (keep/discard per agent) and print the table."""
        for path in write_results(run_dir):
            console.print(f"wrote {path}")
        for agent, rows in results_table(run_dir).items():
            for d in rows:
                value = "-" if d.value is None else f"{d.value:.4f}"
                console.print(f"{agent}\t{d.node_id}\t{d.operator}\t{value}\t{d.decision}\t{d.reason}",
                              highlight=False)
