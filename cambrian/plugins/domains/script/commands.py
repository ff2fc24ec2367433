"""The script pack's commands: ``cambrian script results RUN_DIR``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from cambrian.plugins.domains.script.history import results_table, write_results

console = Console()


def register(app: typer.Typer) -> None:
    script_app = typer.Typer(help="The script pack: keep/discard history of a script campaign.",
                             no_args_is_help=True)
    app.add_typer(script_app, name="script")

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
