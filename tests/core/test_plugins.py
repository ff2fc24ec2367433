"""The plugin manager: built-ins, registering inside a test, duplicates, failures, env vars."""

import sys
import types

import pytest

from cambrian import Scaffold, hookimpl
from cambrian.core.errors import PluginError
from cambrian.core.plugins import KINDS, PluginManager


class EchoScaffold(Scaffold):
    name = "echo-test"

    def propose(self, view):
        return None


class EchoPlugin:
    @hookimpl
    def cambrian_scaffolds(self):
        return [EchoScaffold]


def test_builtins_are_registered_like_plugins(fresh_pm):
    reg = fresh_pm.registry()
    assert set(reg) == set(KINDS)
    assert reg["scaffold"]["random"].plugin == "scaffolds.random"
    assert reg["domain"]["toy"].plugin == "domains.toy"
    assert reg["executor"]["local"].version != "?"


def test_register_and_unregister_inside_a_test(fresh_pm):
    fresh_pm.register(EchoPlugin(), "echo")
    try:
        assert fresh_pm.get("scaffold", "echo-test") is EchoScaffold
        assert fresh_pm.registry()["scaffold"]["echo-test"].plugin == "echo"
    finally:
        fresh_pm.unregister("echo")
    with pytest.raises(PluginError, match="unknown scaffold 'echo-test'"):
        fresh_pm.get("scaffold", "echo-test")


def test_duplicate_component_names_name_both_plugins(fresh_pm):
    class Clash:
        @hookimpl
        def cambrian_scaffolds(self):
            class Random2(Scaffold):
                name = "random"

                def propose(self, view):
                    return None

            return [Random2]

    fresh_pm.register(Clash(), "clash")
    try:
        with pytest.raises(PluginError) as exc:
            fresh_pm.registry()
        msg = str(exc.value)
        assert "'scaffolds.random'" in msg and "'clash'" in msg and "random" in msg
    finally:
        fresh_pm.unregister("clash")


def test_component_without_name_is_an_error(fresh_pm):
    class Nameless:
        @hookimpl
        def cambrian_scaffolds(self):
            return [object()]

    fresh_pm.register(Nameless(), "nameless")
    try:
        with pytest.raises(PluginError, match="'nameless' returned a scaffold without a 'name'"):
            fresh_pm.registry()
    finally:
        fresh_pm.unregister("nameless")


def test_plugin_that_fails_to_import_is_reported_and_skipped(capsys):
    pm = PluginManager()
    pm._load("broken", "cambrian_no_such_module_xyz", "1.0")
    assert [f.plugin for f in pm.failures] == ["broken"]
    assert "broken" in capsys.readouterr().err
    pm._load("ok", "cambrian.plugins.scaffolds.random", "1.0")
    assert "random" in pm.names("scaffold")


def test_plugin_whose_import_raises_is_skipped(monkeypatch):
    mod = types.ModuleType("cambrian_test_raises")
    monkeypatch.setitem(sys.modules, "cambrian_test_raises", None)  # import raises ImportError
    pm = PluginManager()
    pm._load("raises", "cambrian_test_raises", "1")
    assert pm.failures and pm.failures[0].plugin == "raises"
    del mod


def test_disable_plugins_env(monkeypatch, fresh_pm):
    from cambrian.core.plugins import get_plugin_manager, reset_plugin_manager

    monkeypatch.setenv("CAMBRIAN_DISABLE_PLUGINS", "scaffolds.random")
    reset_plugin_manager()
    assert "random" not in get_plugin_manager().names("scaffold")
    assert "toy" in get_plugin_manager().names("domain")


def test_load_plugins_env_restricts_third_party(monkeypatch):
    from importlib.metadata import EntryPoint, entry_points

    import cambrian.core.plugins as plugins

    builtins = list(entry_points(group="cambrian"))  # cambrian's own: always loaded
    fake = builtins + [EntryPoint("third", "cambrian.plugins.scaffolds.random", "cambrian"),
                       EntryPoint("other", "cambrian_no_such_module_xyz", "cambrian")]
    monkeypatch.setattr(plugins, "entry_points", lambda group: fake)
    monkeypatch.setenv("CAMBRIAN_LOAD_PLUGINS", "")
    monkeypatch.setenv("CAMBRIAN_DISABLE_PLUGINS", "scaffolds.random")
    pm = PluginManager()
    pm.load_default_plugins()
    assert not pm.pm.has_plugin("third") and not pm.failures  # empty list = no third-party plugins
    monkeypatch.setenv("CAMBRIAN_LOAD_PLUGINS", "third")
    pm = PluginManager()
    pm.load_default_plugins()
    assert pm.pm.has_plugin("third") and not pm.failures  # 'other' was never imported
    assert pm.registry()["scaffold"]["random"].plugin == "third"


def test_builtins_come_from_cambrians_own_entry_points():
    from importlib.metadata import entry_points

    from cambrian.core.plugins import get_plugin_manager

    own = {ep.name: ep.value for ep in entry_points(group="cambrian")
           if ep.dist is not None and ep.dist.metadata["Name"] == "cambrian"}
    assert own["scaffolds.random"] == "cambrian.plugins.scaffolds.random"
    assert set(own) <= {name for name, _ in get_plugin_manager().pm.list_name_plugin()}


def test_missing_builtin_entry_points_are_reported(monkeypatch, capsys):
    import cambrian.core.plugins as plugins

    monkeypatch.setattr(plugins, "entry_points", lambda group: [])
    monkeypatch.setattr(plugins, "_declared_in_checkout", lambda: {})  # an installed copy, metadata lost
    pm = PluginManager()
    pm.load_default_plugins()
    assert [f.plugin for f in pm.failures] == ["cambrian"]
    assert "pip install -e ." in capsys.readouterr().err


def test_a_checkout_with_stale_metadata_loads_the_declared_builtins(monkeypatch):
    """An editable install made before the built-in list changed: pyproject.toml wins."""
    import tomllib
    from pathlib import Path

    import cambrian.core.plugins as plugins

    declared = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    declared = declared["project"]["entry-points"]["cambrian"]
    assert plugins._declared_in_checkout() == declared
    monkeypatch.setattr(plugins, "entry_points", lambda group: [])  # metadata without the list
    pm = PluginManager()
    pm.load_default_plugins()
    assert not pm.failures
    assert [name for name, _ in pm.pm.list_name_plugin()] == list(declared)  # in declared order


def test_a_misspelled_hook_fails_loudly_naming_the_nearest_hook():
    class Typo:
        @hookimpl
        def cambrian_scafolds(self):
            return [EchoScaffold]

    pm = PluginManager()
    with pytest.raises(PluginError, match="plugin 'typo'.*'cambrian_scafolds' is not a Cambrian "
                                          "hook; did you mean 'cambrian_scaffolds'"):
        pm.register(Typo(), "typo")
    assert not pm.pm.has_plugin("typo")  # nothing of it stays registered


def test_a_hook_without_the_marker_fails_loudly():
    class Unmarked:
        def cambrian_scaffolds(self):
            return [EchoScaffold]

    with pytest.raises(PluginError, match="cambrian_scaffolds is not marked @cambrian.hookimpl"):
        PluginManager().register(Unmarked(), "unmarked")


def test_an_installed_plugin_with_a_misspelled_hook_is_reported_and_skipped(monkeypatch, capsys):
    mod = types.ModuleType("cambrian_test_typo")
    mod.cambrian_domain = hookimpl(lambda: [])
    monkeypatch.setitem(sys.modules, "cambrian_test_typo", mod)
    pm = PluginManager()
    pm._load("typo", "cambrian_test_typo", "1")
    assert pm.failures[0].plugin == "typo" and "did you mean 'cambrian_domains'" in pm.failures[0].error
    assert "typo" in capsys.readouterr().err and not pm.pm.has_plugin("typo")


def test_typed_accessors_return_components_and_name_the_known_ones(fresh_pm):
    from cambrian import Domain, Evaluator, Executor, LLMBackend, Operator

    assert issubclass(fresh_pm.domain("toy"), Domain)
    assert issubclass(fresh_pm.evaluator("toy"), Evaluator)
    assert issubclass(fresh_pm.operator("vector-perturb"), Operator)
    assert issubclass(fresh_pm.executor("local"), Executor)
    assert issubclass(fresh_pm.llm_backend("replay"), LLMBackend)
    assert fresh_pm.scaffold("random").name == "random"
    assert fresh_pm.primitive("attention").name == "attention"
    with pytest.raises(PluginError, match="unknown scaffold 'nope'; known: .*greedy"):
        fresh_pm.scaffold("nope")
