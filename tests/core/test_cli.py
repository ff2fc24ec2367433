"""The command line: every user error is one line on stderr, exit code 2, and nothing written.

Most cases run the CLI in this process (``cambrian.cli.main(argv)``, the console entry
point); a few run it as a real subprocess to check the installed command end to end.
"""

import os
import subprocess
import sys

import pytest
import yaml

from cambrian import Store
from cambrian.cli import main

from ..conftest import toy_config

COMPOSE = {"name": "c", "domain": {"name": "compose"}, "executor": {"name": "local", "options": {"workers": 1}},
           "budget": {"max_nodes": 2}, "agents": [{"name": "a", "scaffold": "random"}]}

# (case id, config dict or None for the toy config, CLI arguments after the config, stderr must contain)
BAD_RUNS = [
    ("domain-primitive", COMPOSE, ["--set", "domain.options.primitives=[attention,nosuch]"],
     "domain.options.primitives: unknown primitive 'nosuch'"),
    ("domain-family", COMPOSE, ["--set", "domain.options.family=cnn"], "domain.options.family: Input should be"),
    ("domain-layers", COMPOSE, ["--set", "domain.options.min_layers=10"], "domain.options: n_layers 8 is outside"),
    ("domain-typo", None, ["--set", "domain.options.dimm=3"], "domain.options.dimm: unknown key (known: dim,"),
    ("domain-range", None, ["--set", "domain.options.dim=0"], "domain.options.dim: Input should be greater"),
    ("domain-choice", None, ["--set", "domain.options.function=cosine"], "domain.options.function: Input should be"),
    ("domain-name", None, ["--set", "domain.name=nosuch"], "domain.name: unknown domain 'nosuch'"),
    ("domain-task", None, ["--set", "domain={name: python-task, options: {task: nosuch}}",
                           "--set", "agents.0.operators=[seeds]"], "domain.options.task: 'nosuch' is neither"),
    ("executor-typo", None, ["--set", "executor.options.wrokers=4"], "executor.options.wrokers: unknown key"),
    ("executor-workers", None, ["--set", "executor.options.workers=-1"], "executor.options.workers: Input should"),
    ("executor-isolation", None, ["--set", "executor.options.isolation=fiber"], "executor.options.isolation:"),
    ("executor-name", None, ["--set", "executor.name=nosuch"], "executor.name: unknown executor 'nosuch'"),
    ("scaffold-typo", None, ["--set", "agents.0.scaffold.options.n_draftz=4"],
     "agents.0.scaffold.options.n_draftz: unknown key (known: n_drafts, p_draft)"),
    ("scaffold-range", None, ["--set", "agents.0.scaffold.options.p_draft=1.5"], "agents.0.scaffold.options.p_draft:"),
    ("scaffold-type", None, ["--set", "agents.0.scaffold.options.n_drafts=many"], "Input should be a valid integer"),
    ("scaffold-name", None, ["--set", "agents.0.scaffold=nosuch"], "agents.0.scaffold.name: unknown scaffold"),
    ("scaffold-choice", None, ["--set", "agents.0.scaffold={name: mcts, options: {backup: median}}"],
     "agents.0.scaffold.options.backup: Input should be 'mean' or 'max'"),
    ("operator-name", None, ["--set", "agents.0.operators=[nosuch]"], "agents.0.operators.0: unknown operator"),
    ("operator-option", None, ["--set", "agents.0.operator_options.vector-perturb.sigma=-1"],
     "agents.0.operator_options.vector-perturb.sigma: Input should be greater than 0"),
    ("operator-not-used", None, ["--set", "agents.0.operator_options.llm-draft.repair_retries=1"],
     "agents.0.operator_options.llm-draft: 'llm-draft' is not one of this agent's operators"),
    ("llm-name", None, ["--set", "agents.0.llm=nosuch"], "agents.0.llm.name: unknown llm 'nosuch'"),
    ("llm-required", None, ["--set", "agents.0.llm=openai"], "agents.0.llm.options.model: Field required"),
    ("llm-cassette", None, ["--set", "agents.0.llm={name: replay, options: {cassette: /no/such.jsonl}}"],
     "agents.0.llm: llm 'replay': cassette /no/such.jsonl not found"),
    ("evaluator-name", None, ["--set", "evaluator=nosuch"], "evaluator.name: unknown evaluator 'nosuch'"),
    ("evaluator-option", None, ["--set", "evaluator={name: toy, options: {x: 1}}"],
     "evaluator.options.x: unknown key (known: none, it takes no options)"),
    ("budget-nodes", None, ["--set", "budget.max_nodes=-1"], "budget.max_nodes: Input should be greater than or"),
    ("budget-wall", None, ["--set", "budget.wall_s=-5"], "budget.wall_s: Input should be greater than or"),
    ("agent-budget", None, ["--set", "agents.0.budget.llm_tokens=-1"], "agents.0.budget.llm_tokens: Input should"),
    ("budget-typo", None, ["--set", "budget.max_node=3"], "budget.max_node: unknown key"),
    ("max-in-flight", None, ["--set", "agents.0.max_in_flight=0"], "agents.0.max_in_flight: Input should be greater"),
    ("sandbox-timeout", None, ["--set", "sandbox.timeout_s=0"], "sandbox.timeout_s: Input should be greater than 0"),
    ("sandbox-procs", None, ["--set", "sandbox.max_procs=-1"], "sandbox.max_procs: Input should be greater"),
    ("phase-option", None, ["--set", "phases.hidden.top_k=0"], "phases.hidden.top_k: Input should be greater"),
    ("phase-name", None, ["--set", "phases.nosuch={}"], "phases.nosuch: unknown phase for domain 'toy'"),
    ("seed-type", None, ["--set", "seed=abc"], "seed: Input should be a valid integer"),
    ("no-agents", None, ["--set", "agents=[]"], "agents: List should have at least 1 item"),
    ("dup-agents", None, ["--set", "agents=[{name: a}, {name: a}]"], "repeated: a"),
    ("override-syntax", None, ["--set", "agents"], "override 'agents' must look like key.path=value"),
    ("override-index", None, ["--set", "agents.5.scaffold=x"], "is not an index into a list of 1"),
    ("top-level", ["not", "a", "mapping"], [], "the top level must be a mapping"),
]


def cli(capsys, *args):
    """Run ``cambrian ARGS`` in this process; returns (exit code, stdout, stderr lines)."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
        raise SystemExit(0)
    out = capsys.readouterr()
    return exc.value.code, out.out, [ln for ln in out.err.splitlines() if ln.strip()]


def only_config_left(tmp_path):
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"], "a refused run wrote something"


@pytest.mark.parametrize("config,args,expect", [c[1:] for c in BAD_RUNS], ids=[c[0] for c in BAD_RUNS])
def test_bad_input_is_one_line_exit_2_nothing_written(capsys, tmp_path, config, args, expect):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(toy_config() if config is None else config))
    code, _, err = cli(capsys, "run", path, "--out", tmp_path / "run", *args)
    assert code == 2
    assert len(err) == 1, err
    assert err[0].startswith("error: ") and expect in err[0], err[0]
    only_config_left(tmp_path)


BAD_COMMANDS = [
    ([], "cambrian needs a command"),
    (["show"], "Missing argument"),
    (["run", "--bogus"], "No such option: --bogus"),
    (["nosuch"], "No such command 'nosuch'"),
    (["script"], "cambrian script needs a command (results)"),
    (["show", "--top", "abc", "x"], "Invalid value for '--top'"),
    (["run"], "give a campaign YAML file, or --default"),
    (["run", "{tmp}/none.yaml"], "config file {tmp}/none.yaml not found"),
    (["show", "{tmp}/none"], "no campaign store at {tmp}/none"),
    (["resume", "{tmp}/none"], "no campaign store at {tmp}/none"),
    (["report", "{tmp}/none"], "no campaign store at {tmp}/none"),
    (["plugins", "--options", "nosuch"], "no component named 'nosuch'"),
]


@pytest.mark.parametrize("args,expect", BAD_COMMANDS, ids=[" ".join(a[0]) or "bare" for a in BAD_COMMANDS])
def test_usage_errors_are_one_line_exit_2(capsys, tmp_path, args, expect):
    args = [a.format(tmp=tmp_path) for a in args]
    code, _, err = cli(capsys, *args)
    assert code == 2
    assert len(err) == 1, err
    assert err[0].startswith("error: ") and expect.format(tmp=tmp_path) in err[0], err[0]
    assert list(tmp_path.iterdir()) == []


def test_malformed_yaml_and_a_file_as_run_dir(capsys, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("domain: toy\nagents: [\n  - name: a\n")
    code, _, err = cli(capsys, "run", path, "--out", tmp_path / "run")
    assert code == 2 and len(err) == 1 and "malformed YAML" in err[0]
    path.write_text(yaml.safe_dump(toy_config()))
    (tmp_path / "file").write_text("x")
    code, _, err = cli(capsys, "run", path, "--out", tmp_path / "file")
    assert code == 2 and len(err) == 1 and "is a file; a run directory must be a directory" in err[0]
    assert (tmp_path / "file").read_text() == "x"


def test_version(capsys):
    code, out, err = cli(capsys, "--version")
    assert code == 0 and out.startswith("cambrian ") and not err


def test_refused_run_then_the_fixed_run_in_a_dotted_dir(capsys, tmp_path):
    """A refused run leaves nothing, so the fixed re-run is a fresh run; a run dir named x.v2
    is a directory holding the store, and show reads it back."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(toy_config(budget={"max_nodes": 3})))
    run = tmp_path / "toy.v2"
    code, _, err = cli(capsys, "run", path, "--out", run, "--quiet", "--set", "agents.0.scaffold.options.n_draftz=1")
    assert code == 2 and len(err) == 1 and not run.exists()
    code, out, err = cli(capsys, "run", path, "--out", run, "--quiet", "--set", "agents.0.scaffold.options.n_drafts=1")
    assert code == 0, err
    assert run.is_dir() and (run / Store.FILENAME).is_file()
    assert len(Store(run, create=False).nodes(phase="search")) == 3
    assert "stopped: max_nodes" in out
    code, out, _ = cli(capsys, "show", run)
    assert code == 0 and "stopped (max_nodes)" in out
    code, _, err = cli(capsys, "run", path, "--out", run)
    assert code == 2 and len(err) == 1 and "already holds a campaign; use `cambrian resume" in err[0]


@pytest.mark.parametrize("args,code,stream,expect", [
    ([], 2, "err", "error: cambrian needs a command"),
    (["--version"], 0, "out", "cambrian "),
    (["run", "{config}", "--out", "{tmp}/run", "--set", "agents.0.scaffold.options.n_draftz=4"], 2, "err",
     "agents.0.scaffold.options.n_draftz: unknown key"),
])
def test_installed_command_in_a_subprocess(tmp_path, args, code, stream, expect):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(toy_config()))
    args = [a.format(config=config, tmp=tmp_path) for a in args]
    out = subprocess.run([sys.executable, "-m", "cambrian.cli", *args], capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, COLUMNS="60"))
    assert out.returncode == code, out.stderr
    assert "Traceback" not in out.stderr
    text = out.stderr if stream == "err" else out.stdout
    assert expect in text
    if stream == "err":
        assert len(out.stderr.strip().splitlines()) == 1  # one line, even on a narrow terminal
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


def test_plugins_options_prints_types_bounds_and_defaults_from_the_model(capsys):
    code, out, err = cli(capsys, "plugins", "--options", "random")
    assert code == 0 and not err
    row = next(ln for ln in out.splitlines() if "n_drafts" in ln)
    assert "int (>= 0)" in row and " 3 " in row
    assert "float (>= 0, <= 1)" in out and "0.3" in out
    code, out, _ = cli(capsys, "plugins", "--options", "toy")  # a domain: its phases too
    assert code == 0 and '"rastrigin"' in out and '"rosenbrock"' in out and "phases.hidden options" in out
    code, out, _ = cli(capsys, "plugins", "--options", "mamba")  # a primitive's layer options
    assert code == 0 and "d_state" in out and "int | None (>= 1)" in out


LIGHT_COMMANDS = """\
import sys
from cambrian.cli import main

def command(*argv):
    try:
        main(list(argv))
    except SystemExit as exc:
        assert not exc.code, (argv, exc.code)

command("--help")
command("plugins")
assert "langgraph" not in sys.modules, "--help or plugins imported langgraph"
command("show", sys.argv[1])
# show reads the checkpoint with LangGraph's SQLite reader, never the graph machinery
assert "langgraph.graph" not in sys.modules and "langgraph.pregel" not in sys.modules
"""


def test_help_plugins_and_show_leave_the_langgraph_graph_unimported(tmp_path):
    """The graph (langgraph.graph, with the LangChain it pulls) loads only in run, resume, approve."""
    from cambrian import Campaign

    threads = {"name": "local", "options": {"workers": 1, "isolation": "thread"}}
    Campaign.from_config(toy_config(executor=threads, budget={"max_nodes": 2}), tmp_path / "run").run()
    assert (tmp_path / "run" / "graph.sqlite").exists()
    out = subprocess.run([sys.executable, "-c", LIGHT_COMMANDS, str(tmp_path / "run")], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Usage" in out.stdout and "toy" in out.stdout and "nodes" in out.stdout
