"""Typed component options: every built-in declares a model, the config is checked against it."""

import pytest
from pydantic import Field

from cambrian import Options, Scaffold
from cambrian.core.config import parse_config
from cambrian.core.errors import ConfigError
from cambrian.options_doc import options_rows
from cambrian.core.plugins import get_plugin_manager

from ..conftest import toy_config


def _components():
    pm = get_plugin_manager()
    for kind, table in pm.registry().items():
        if kind == "primitive":  # primitives declare their options as PrimitiveOption lists
            continue
        for name, reg in table.items():
            if reg.component.__module__.startswith("cambrian."):  # the built-ins
                yield kind, name, reg.component


@pytest.mark.parametrize("kind,name,comp", list(_components()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_builtin_declares_typed_options(kind, name, comp):
    assert comp.typed_options(), f"{kind} {name} declares no Options model"
    assert options_rows(comp.Options) is not None
    if kind == "domain":
        for key, phase in (comp.phase_classes() or {}).items():
            assert phase.typed_options(), f"phase {key} of domain {name} declares no Options model"


@pytest.mark.parametrize("override,path", [
    ("agents.0.scaffold.options.n_draftz=4", "agents.0.scaffold.options.n_draftz: unknown key (known: n_drafts"),
    ("agents.0.scaffold.options.p_draft=2", "agents.0.scaffold.options.p_draft: Input should be less than"),
    ("agents.0.scaffold.options.n_drafts=many", "agents.0.scaffold.options.n_drafts: Input should be a valid int"),
    ("executor.options.wrokers=4", "executor.options.wrokers: unknown key"),
    ("executor.options.workers=0", "executor.options.workers: Input should be greater than or equal to 1"),
    ("domain.options.function=cosine", "domain.options.function: Input should be 'rastrigin'"),
    ("agents.0.scaffold=nosuch", "agents.0.scaffold.name: unknown scaffold 'nosuch'"),
    ("agents.0.operator_options.vector-perturb.sigma=-1", "agents.0.operator_options.vector-perturb.sigma"),
    ("agents.0.operator_options.spec-mutate.edits=2", "agents.0.operator_options.spec-mutate: 'spec-mutate' is "
                                                      "not one of this agent's operators"),
    ("phases.hidden.top_k=0", "phases.hidden.top_k: Input should be greater than or equal to 1"),
    ("phases.nosuch.x=1", "phases.nosuch: unknown phase for domain 'toy' (phases: hidden)"),
    ("budget.max_nodes=-1", "budget.max_nodes: Input should be greater than or equal to 0"),
    ("agents.0.budget.wall_s=-5", "agents.0.budget.wall_s: Input should be greater than or equal to 0"),
    ("agents.0.max_in_flight=0", "agents.0.max_in_flight: Input should be greater than or equal to 1"),
    ("sandbox.memory_mb=0", "sandbox.memory_mb: Input should be greater than or equal to 1"),
])
def test_config_errors_name_the_full_key_path(override, path):
    with pytest.raises(ConfigError) as exc:
        parse_config(toy_config(), source="c.yaml", overrides=[override])
    msg = str(exc.value)
    assert msg.startswith(f"c.yaml: {path}"), msg
    assert "\n" not in msg


def test_valid_options_are_typed_on_the_instance():
    from cambrian.campaign.engine import Campaign

    cfg = toy_config(agents=[{"name": "a", "scaffold": {"name": "greedy", "options": {"n_drafts": "2"}}}])
    campaign = Campaign(parse_config(cfg), "/nonexistent/never-written")
    scaffold = campaign.agents[0].scaffold
    assert scaffold.options.n_drafts == 2 and scaffold.n_drafts == 2  # "2" coerced by the model
    assert scaffold.options.debug_prob == 0.5  # the model's default
    assert campaign.domain.options.dim == 3


def test_third_party_component_declares_its_own_model():
    class Mine(Scaffold):
        name = "mine"

        class Options(Options):
            width: int = Field(3, ge=1, description="how wide")

        def propose(self, view):
            return None

    assert Mine(width=5).options.width == 5
    with pytest.raises(ConfigError, match=r"scaffold 'mine' options: width: Input should be greater"):
        Mine(width=0)
    with pytest.raises(ConfigError, match=r"scaffold 'mine' options: depth: unknown key \(known: width\)"):
        Mine(depth=1)
    assert options_rows(Mine.Options) == [("width", "int (>= 1)", "3", "how wide")]


def test_untyped_component_still_reads_its_options():
    class Old(Scaffold):
        name = "old"

        def propose(self, view):
            return None

    old = Old(anything=1)
    assert not Old.typed_options()
    assert old.options.anything == 1 and old.options.get("missing", 7) == 7
