"""The hooks through which every Cambrian component is found.

Collection hooks return iterables of component *classes*; each class has a
unique ``name`` attribute within its kind. Event hooks let plugins observe a
campaign; their return values are ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

import pluggy

if TYPE_CHECKING:
    from cambrian.core.records import Node, ReportSection

hookspec = pluggy.HookspecMarker("cambrian")


# --- collection hooks: called once when the plugin manager builds its registry ---


@hookspec
def cambrian_scaffolds() -> Iterable[type]:
    """Return search policies (subclasses of :class:`cambrian.Scaffold`).

    Called when the registry is built. Each class's ``name`` is what a config's
    ``agents[].scaffold`` refers to.
    """


@hookspec
def cambrian_operators() -> Iterable[type]:
    """Return operators (subclasses of :class:`cambrian.Operator`).

    Called when the registry is built. An operator makes new candidates from
    parent nodes; its ``name`` is what a scaffold asks for (``draft``, ``mutate``, ...).
    """


@hookspec
def cambrian_evaluators() -> Iterable[type]:
    """Return evaluators (subclasses of :class:`cambrian.Evaluator`).

    Called when the registry is built, in the campaign process and in every
    evaluation worker. An evaluator turns a candidate into metrics.
    """


@hookspec
def cambrian_domains() -> Iterable[type]:
    """Return domain packs (subclasses of :class:`cambrian.Domain`).

    Called when the registry is built. A domain names its candidate kind,
    seeds, objective, default evaluator and default operators.
    """


@hookspec
def cambrian_primitives() -> Iterable[Any]:
    """Return architecture primitives (token or channel mixers).

    Called when the registry is built. Each item has a unique ``name`` and is
    registered with :mod:`cambrian.architectures` so specs can use it.
    """


@hookspec
def cambrian_llm_backends() -> Iterable[type]:
    """Return LLM backends (subclasses of :class:`cambrian.LLMBackend`).

    Called when the registry is built. An agent's ``llm.name`` refers to one.
    """


@hookspec
def cambrian_executors() -> Iterable[type]:
    """Return executors (subclasses of :class:`cambrian.Executor`).

    Called when the registry is built. The campaign's ``executor.name`` refers to one.
    """


# --- event hooks: called by the campaign engine; return values are ignored ---


@hookspec
def cambrian_campaign_start(run_dir: str, config: dict[str, Any]) -> None:
    """Called once when a campaign starts or resumes, after its store is open.

    ``run_dir`` is the campaign's directory; ``config`` the validated config as a dict.
    """


@hookspec
def cambrian_node_evaluated(run_dir: str, node: "Node") -> None:
    """Called after a node's evaluation result is written to the store.

    ``node`` is the final record (status ``done``, ``invalid`` or ``failed``).
    """


@hookspec
def cambrian_campaign_end(run_dir: str, reason: str, summary: dict[str, Any]) -> None:
    """Called once when a campaign stops: ``reason`` says why (a budget name,
    ``complete``), ``summary`` holds the node counts and the best node id."""


# --- the faces of a pack: its commands and its part of the report ---


@hookspec
def cambrian_commands(app: Any) -> None:
    """Add commands to the ``cambrian`` command line (as llm's ``register_commands``).

    ``app`` is the root ``typer.Typer``: ``@app.command()`` adds a command,
    ``app.add_typer(sub, name="pack")`` a group. Called once when the CLI is
    imported; a name another plugin already added is an error naming both.
    """


@hookspec
def cambrian_report_sections(run_dir: str, config: dict[str, Any],
                             phases: dict[str, Any]) -> Iterable[ReportSection] | None:
    """Return sections for the campaign's HTML report (:class:`cambrian.ReportSection`).

    Called when a report is written: ``run_dir`` is the campaign's directory (figures
    go in ``run_dir/figures``), ``config`` the campaign config as a dict (check
    ``config["domain"]["name"]`` to speak only for your own pack), ``phases`` the
    stored phase summaries by name. Return ``None`` or ``[]`` for nothing.
    """
