"""The compose pack's command: ``cambrian export RUN_DIR NODE --out DIR``."""

from __future__ import annotations

from pathlib import Path

import typer

from cambrian.plugins.domains.cli import console


def register(app: typer.Typer) -> None:
    @app.command()
    def export(run_dir: Path = typer.Argument(..., help="Run directory."),
               node: str = typer.Argument(..., help="Node id (or a unique prefix)."),
               out: Path = typer.Option(..., "--out", help="Folder for the transformers model.")) -> None:
        """Write a node's trained model as a transformers model directory (architecture specs)."""
        # torch and transformers: imported only when the command runs
        from cambrian.plugins.domains.compose.export import export_node

        console.print(f"exported: {export_node(run_dir, node, out)}")
