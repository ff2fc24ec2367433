"""The attention pack's commands: ``cambrian attention register RUN_DIR NODE --name NAME``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cambrian.core.errors import CambrianError
from cambrian.plugins.domains.attention.designs import register_node
from cambrian.plugins.domains.cli import console, pack_group


def register(app: typer.Typer) -> None:
    attention_app = pack_group(app, "attention",
                               "The attention pack: register a passing mixer design as a primitive.")

    @attention_app.command("register")
    def attention_register(
            run_dir: Path = typer.Argument(..., help="Run directory of an attention campaign."),
            node: str = typer.Argument(..., help="Id of a node whose design passed evaluation."),
            name: str = typer.Option(..., "--name", help="Primitive name for specs, e.g. my_mixer."),
            folder: Optional[Path] = typer.Option(None, "--dir", help="Designs folder (default "
                                                  "$CAMBRIAN_PRIMITIVES_DIR or ~/.cambrian/primitives)."),
            overwrite: bool = typer.Option(False, "--overwrite")) -> None:
        """Register a design as a primitive: specs (compose campaigns and their workers) may then name it."""
        try:
            path = register_node(run_dir, node, name, folder, overwrite=overwrite)
        except ValueError as exc:
            raise CambrianError(str(exc)) from None
        console.print(f"registered primitive {name!r}: {path}")
