"""Config validation and dotted overrides."""

import pytest

from cambrian.core.config import load_config, parse_config
from cambrian.core.errors import ConfigError

from ..conftest import toy_config


def test_valid_config_and_override():
    cfg = parse_config(toy_config(), overrides=["agents.0.scaffold=greedy", "budget.max_nodes=9",
                                                "agents.0.scaffold.options.n_drafts=2"])
    assert cfg.agents[0].scaffold.name == "greedy"
    assert cfg.agents[0].scaffold.options == {"n_drafts": 2}
    assert cfg.budget.max_nodes == 9


def test_unknown_key_names_file_and_path(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("domain: toy\nagents: [{name: a, scafold: random}]\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    msg = str(exc.value)
    assert str(p) in msg and "agents.0.scafold: unknown key" in msg and "\n" not in msg


def test_malformed_yaml_names_line(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("domain: toy\nagents: [\n  - name: a\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: line \d+, column \d+: malformed YAML"):
        load_config(p)


def test_missing_file():
    with pytest.raises(ConfigError, match="config file /no/such.yaml not found"):
        load_config("/no/such.yaml")


def test_bad_values_and_duplicate_agents():
    with pytest.raises(ConfigError, match="budget.max_nodes"):
        parse_config(toy_config(budget={"max_nodes": "many"}))
    with pytest.raises(ConfigError, match="repeated: a"):
        parse_config(toy_config(agents=[{"name": "a"}, {"name": "a"}]))
    with pytest.raises(ConfigError, match="not an index"):
        parse_config(toy_config(), overrides=["agents.5.scaffold=x"])
    with pytest.raises(ConfigError, match="must look like"):
        parse_config(toy_config(), overrides=["agents"])
