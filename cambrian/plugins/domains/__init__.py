"""The built-in domain packs, one folder each; what their plugin modules share."""

from __future__ import annotations

import importlib
from typing import Any, Callable

from cambrian import hookimpl


def commands_from(module: str) -> Callable[..., None]:
    """A pack's ``cambrian_commands`` hook: ``register(app)`` of its commands ``module``.

    The module is imported when the CLI asks for the commands, not with the pack: typer and
    what the commands need stay out of evaluation workers, which import every pack.

        cambrian_commands = commands_from("cambrian.plugins.domains.mypack.commands")
    """

    @hookimpl
    def cambrian_commands(app: Any) -> None:
        importlib.import_module(module).register(app)

    return cambrian_commands
