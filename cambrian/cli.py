"""The ``cambrian`` command: a thin layer over the Python API."""

from __future__ import annotations

import json
import sys
import time
from importlib.resources import files
from pathlib import Path
from typing import Any, Optional

import typer
from rich.live import Live

from cambrian.campaign.checkpoint import coordination_state
from cambrian.campaign.deadline import deadline_line
from cambrian.campaign.engine import PROMOTION, Campaign
from cambrian.core.components import CODE_KINDS
from cambrian.core.config import load_config
from cambrian.core.errors import CambrianError
from cambrian.core.plugins import KINDS, get_plugin_manager
from cambrian.execution.harness import UNISOLATED
from cambrian.execution.sandbox import isolation_available
from cambrian.options_doc import options_rows, primitive_rows
from cambrian.plugins.reporting.console import make_console
from cambrian.plugins.reporting.live import LiveView
from cambrian.plugins.reporting.report import write_report
from cambrian.plugins.reporting.summary import campaign_summary, phase_records, phase_warnings, run_state
from cambrian.plugins.reporting.tables import leaderboard_table, yield_table

app = typer.Typer(help="Cambrian: AI research agents that discover neural-network architectures.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
console = make_console()
err = make_console(stderr=True)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("cambrian")
        except PackageNotFoundError:  # run from a source tree that is not installed
            number = "0+unknown"
        console.print(f"cambrian {number}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Cambrian: AI research agents that discover neural-network architectures."""


def default_config_path() -> Path:
    return Path(str(files("cambrian") / "configs" / "default.yaml"))


@app.command()
def plugins(options: Optional[str] = typer.Option(None, "--options", metavar="NAME",
                                                  help="Print one component's options: types and defaults.")) -> None:
    """List every registered component by kind, with its plugin and version."""
    from rich.table import Table


    pm = get_plugin_manager()
    if options is not None:
        _print_options(pm, options)
        return
    t = Table(title="Cambrian components")
    for col in ("kind", "name", "plugin", "version"):
        t.add_column(col)
    reg = pm.registry()
    for kind in KINDS:
        for name in sorted(reg[kind]):
            r = reg[kind][name]
            t.add_row(kind, name, r.plugin, r.version)
    console.print(t)
    for f in pm.failures:
        err.print(f"[yellow]plugin {f.plugin!r} failed to load: {f.error}[/yellow]")


def _print_options(pm, name: str) -> None:
    """The options model of every component called ``name`` (a scaffold and a domain may share one)."""
    from rich.table import Table

    found = [(kind, table[name]) for kind, table in pm.registry().items() if name in table]
    if not found:
        known = sorted({n for table in pm.registry().values() for n in table})
        raise CambrianError(f"no component named {name!r}; known: {', '.join(known)}")
    for kind, reg in found:
        comp = reg.component
        t = Table(title=f"{kind} {name!r} options ({reg.plugin})", title_justify="left")
        for col in ("option", "type", "default", "description"):
            t.add_column(col, overflow="fold")
        if not hasattr(comp, "Options"):  # a primitive: its layer options, checked by the spec
            rows = primitive_rows(comp)
            for row in rows:
                t.add_row(*row)
            console.print(t if rows else f"{kind} {name!r} ({reg.plugin}) takes no options")
            continue
        rows = options_rows(comp.Options)
        for row in rows:
            t.add_row(*row)
        if rows:
            console.print(t)
        elif comp.typed_options():
            console.print(f"{kind} {name!r} ({reg.plugin}) takes no options")
        else:
            console.print(f"{kind} {name!r} ({reg.plugin}) declares no options model: its options are unchecked")
        if kind == "domain" and (phases := comp.phase_classes()):
            for key, phase in phases.items():
                t = Table(title=f"phases.{key} options", title_justify="left")
                for col in ("option", "type", "default", "description"):
                    t.add_column(col, overflow="fold")
                for row in options_rows(phase.Options):
                    t.add_row(*row)
                console.print(t)


def _run(campaign, quiet: bool) -> None:
    if quiet or not console.is_terminal:
        last: list = [0.0, None]

        def tick(c) -> None:  # plain progress lines when not on a terminal
            if time.monotonic() - last[0] > 5 or c.current_phase != last[1]:
                last[0], last[1] = time.monotonic(), c.current_phase
                best = c.top(1)
                line = f"[{c.elapsed():6.0f}s] nodes {c.count()}"
                if best:
                    line += f"  best {best[0].score(c.objective):.4f}"
                if c.current_phase:
                    line += f"  phase {c.current_phase} running"
                console.print(line)

        campaign.listeners.append(tick)
        campaign.subscribers.append(_print_update)
        result = campaign.run()
    else:
        view = LiveView(campaign)  # re-drawn on every refresh: the clock ticks between results
        campaign.subscribers.append(view.on_update)
        with Live(view, console=console, refresh_per_second=2):
            result = campaign.run()
    nodes = campaign.open_store().nodes(phase="search")
    console.print(leaderboard_table(nodes, campaign.objective))
    if (table := yield_table(nodes, campaign.objective)) is not None:
        console.print(table)
    if result.reason == "awaiting_approval":
        console.print(_awaiting_line(coordination_state(campaign.run_dir)["awaiting"]), highlight=False)
        console.print(f"decide with `cambrian approve {campaign.run_dir}` (or --reject), "
                      f"then `cambrian resume {campaign.run_dir}`", highlight=False)
        return
    console.print(f"stopped: {result.reason}; nodes: {result.counts}")
    if (line := deadline_line(campaign.open_store())) is not None:
        console.print(line, highlight=False, soft_wrap=True)
    for agent, error in result.agent_errors.items():
        err.print(f"agent {agent} stopped: {error}", highlight=False, soft_wrap=True)
    report = write_report(campaign.run_dir)
    console.print(f"report: {report}")
    if result.failed:  # no agent could search: say so to scripts and CI too
        sys.exit(1)


def _print_update(campaign, update: dict) -> None:
    """A plain progress line for each coordination update of the graph's stream."""
    kind = update.get("kind")
    if kind == "allocation_changed" and "paused" in update:
        state = "paused" if update["paused"] else "unpaused"
        line = f"agent {update['agent']} {state}: {update['reason']}"
    elif kind == "insight_added":
        line = f"insight by {update['agent']}: {update['text'][:160]}"
    elif kind == "phase_started":
        line = f"phase {update['phase']} started"
    elif kind == "approval_needed":
        line = _awaiting_line(update)
    else:  # agent steps and slot grants are many: the periodic line covers them
        return
    console.print(f"[{campaign.elapsed():6.0f}s] {line}", highlight=False)


def _awaiting_line(request: dict | None) -> str:
    if not request:
        return "awaiting approval"
    cost = ", ".join(f"{k} {v:,.4g}" if isinstance(v, (int, float)) else f"{k} {v}"
                     for k, v in (request.get("cost") or {}).items())
    return f"awaiting approval of {_subject(request)}: {cost or 'cost not estimated'}"


def _subject(request: dict) -> str:
    """What an approval is about: a phase, or a promotion (with its agent and rung)."""
    if "promotion" in request:
        return (f"{request['promotion']} (node {request.get('node')} of agent {request.get('agent')}, "
                f"fidelity {request.get('from_fidelity')} -> {request.get('fidelity')})")
    return f"phase {request.get('phase')}"


def _refuse_unisolated(path: Path, overrides: list[str]) -> None:
    """Before anything is written: a domain whose candidates are code needs isolation (or consent)."""
    cfg = load_config(path, overrides)
    kind = get_plugin_manager().get("domain", cfg.domain.name).candidate_kind
    if kind in CODE_KINDS and not cfg.sandbox.unsafe_no_isolation and not isolation_available():
        raise CambrianError(UNISOLATED)


def unisolated_line(config) -> str | None:
    """The first line of show and the report for a run allowed to go unisolated."""
    if config.sandbox.unsafe_no_isolation:
        return ("UNISOLATED RUN (--unsafe-no-isolation): candidate code may have run as the campaign's "
                "own user, able to read and write what that user can")
    return None


@app.command()
def run(
    config: Optional[Path] = typer.Argument(None, help="Campaign YAML file."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory (default runs/NAME-TIME)."),
    set_: list[str] = typer.Option([], "--set", help="Override a key: --set agents.0.scaffold=mcts"),
    default: bool = typer.Option(False, "--default", help="Run the built-in default campaign."),
    quiet: bool = typer.Option(False, "--quiet", help="Plain progress lines instead of a live table."),
    unsafe_no_isolation: bool = typer.Option(False, "--unsafe-no-isolation",
                                             help="Run candidate code even where it can't be isolated."),
) -> None:
    """Run a campaign from a YAML file (or the built-in default with --default)."""
    if config is None and not default:
        raise CambrianError("give a campaign YAML file, or --default for the built-in campaign")
    path = default_config_path() if default else config
    overrides = [*set_, "sandbox.unsafe_no_isolation=true"] if unsafe_no_isolation else list(set_)
    _refuse_unisolated(path, overrides)
    campaign = Campaign.from_config(path, out, overrides=overrides)
    console.print(f"run directory: {campaign.run_dir}")
    _run(campaign, quiet)


@app.command()
def resume(run_dir: Path = typer.Argument(..., help="Run directory of a stopped campaign."),
           quiet: bool = typer.Option(False, "--quiet")) -> None:
    """Resume a stopped or killed campaign: nothing finished is lost or repeated."""
    _run(Campaign.resume(run_dir), quiet)


@app.command()
def approve(run_dir: Path = typer.Argument(..., help="Run directory awaiting an approval."),
            reject: bool = typer.Option(False, "--reject", help="Skip the phase (or promotion) instead of running it.")) -> None:
    """Approve (or reject) the costly phase or promotion a campaign is waiting at; `resume` then continues."""
    # here, not at the top: the graph (langgraph, about a second) loads only for the commands that run it
    from cambrian.campaign.coordinator import decide

    decision = "rejected" if reject else "approved"
    key = decide(run_dir, decision)
    what = key if key.startswith(PROMOTION) else f"phase {key}"
    console.print(f"{what} {decision}; continue with `cambrian resume {run_dir}`", highlight=False)


@app.command()
def show(run_dir: Path = typer.Argument(..., help="Run directory."),
         top: int = typer.Option(10, help="Rows of the leaderboard."),
         as_json: bool = typer.Option(False, "--json", help="One JSON object: status, counts, leaderboard, "
                                      "floors, hidden verdict (cambrian.plugins.reporting.summary).")) -> None:
    """Show a campaign's status and leaderboard."""
    if as_json:
        sys.stdout.write(json.dumps(campaign_summary(run_dir, top)) + "\n")  # plain: no console markup
        return
    campaign = Campaign.resume(run_dir, lock=False)  # a reader: works while a campaign runs
    if unisolated_line(campaign.config):
        console.print(unisolated_line(campaign.config), highlight=False, soft_wrap=True)
    nodes = campaign.open_store().nodes(phase="search")
    counts, state, coord = run_state(campaign, nodes)
    if coord["awaiting"] is not None:
        state = _awaiting_line(coord["awaiting"])
    console.print(f"{campaign.config.name}: {state}; nodes {counts}", highlight=False)
    if (line := deadline_line(campaign.open_store())) is not None:
        console.print(line, highlight=False, soft_wrap=True)
    for agent, error in campaign.agent_errors().items():
        console.print(f"agent {agent} stopped: {error}", highlight=False, soft_wrap=True)
    for name, reason in coord["paused"].items():
        console.print(f"agent {name} paused: {reason}", highlight=False)
    for warning in phase_warnings(phase_records(campaign)):
        console.print(f"[bold red]{warning}[/bold red]", highlight=False)
    console.print(leaderboard_table(nodes, campaign.objective, k=top))
    if (table := yield_table(nodes, campaign.objective)) is not None:
        console.print(table)


@app.command()
def report(run_dir: Path = typer.Argument(..., help="Run directory.")) -> None:
    """Write the campaign's HTML report (and figures) into the run directory."""
    console.print(f"report: {write_report(run_dir)}")


def _name(command: Any) -> str:
    return command.name or getattr(command.callback, "__name__", "?").replace("_", "-")


def add_plugin_commands(target: typer.Typer, pm: Any = None) -> None:
    """Each plugin's ``cambrian_commands`` on ``target`` (the packs' own: ``export``,
    ``attention register``, ``script results``, ...), in registration order; a command
    name that is already taken is a :class:`CambrianError` naming both owners."""
    pm = pm or get_plugin_manager()
    owner = {_name(c): "cambrian.cli" for c in target.registered_commands + target.registered_groups}
    for impl in pm.hook.cambrian_commands.get_hookimpls():  # in registration order
        plugin = pm.pm.get_name(impl.plugin) or "?"
        n_commands, n_groups = len(target.registered_commands), len(target.registered_groups)
        impl.function(app=target)
        for c in target.registered_commands[n_commands:] + target.registered_groups[n_groups:]:
            if _name(c) in owner:
                raise CambrianError(f"plugins {owner[_name(c)]!r} and {plugin!r} both add the command "
                                    f"{_name(c)!r}; disable one with CAMBRIAN_DISABLE_PLUGINS")
            owner[_name(c)] = plugin


try:  # at import, so `from cambrian.cli import app` (tests, scripts) has every command
    add_plugin_commands(app)
    _plugin_error: CambrianError | None = None
except CambrianError as exc:  # reported by main() as a one-line error
    _plugin_error = exc


def _click_exceptions() -> tuple[type, ...]:
    """ClickException from click and from typer's vendored copy (typer >= 0.29 raises its own)."""
    import click

    found: list[type] = [click.exceptions.ClickException]
    try:
        from typer._click import exceptions as vendored  # type: ignore[import-not-found]

        found.append(vendored.ClickException)
    except ImportError:
        pass
    return tuple(found)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: list[str] | None = None) -> None:
    """The console entry point: every user error is one line on stderr and exit code 2."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        if _plugin_error is not None:
            raise _plugin_error
        code = app(args=args, prog_name="cambrian", standalone_mode=False)
    except CambrianError as exc:
        err.print(f"error: {_one_line(exc)}", highlight=False, soft_wrap=True, markup=False)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        sys.exit(130)
    except _click_exceptions() as exc:  # usage errors: no command, unknown option, missing argument
        sys.exit(_usage_error(exc, args))
    except OSError as exc:  # a path the user named cannot be read or written
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        err.print(f"error:{where} {exc.strerror or exc}", highlight=False, soft_wrap=True, markup=False)
        sys.exit(2)
    if isinstance(code, int) and code:
        sys.exit(code)


def _usage_error(exc: Exception, args: list[str]) -> int:
    """Print a click usage error as one line (with the command it concerns); return the exit code."""
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "cambrian"
    if type(exc).__name__ == "NoArgsIsHelpError":  # a bare `cambrian` or `cambrian script`
        names = ", ".join(sorted(getattr(ctx.command, "commands", {}) or ())) if ctx is not None else ""
        message = f"{command} needs a command ({names}); see `{command} --help`"
    else:
        message = f"{_one_line(exc.format_message())} (see `{command} --help`)"
    err.print(f"error: {message}", highlight=False, soft_wrap=True, markup=False)
    return 2


if __name__ == "__main__":
    main()
