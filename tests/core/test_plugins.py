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
    from importlib.metadata import EntryPoint

    import cambrian.core.plugins as plugins

    fake = [EntryPoint("third", "cambrian.plugins.scaffolds.random", "cambrian"),
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
