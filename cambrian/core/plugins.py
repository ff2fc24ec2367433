"""The plugin manager: loads built-ins and entry-point plugins the same way.

Built-in plugins are modules listed in :data:`cambrian.plugins.BUILTINS`; third-party
plugins are modules named by entry points in the ``cambrian`` group. Both are
imported by :func:`_load` and registered under their plugin name.

Environment:
  CAMBRIAN_LOAD_PLUGINS     comma list of third-party plugin names to load (empty = none)
  CAMBRIAN_DISABLE_PLUGINS  comma list of plugin names (built-in or not) to skip
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from dataclasses import dataclass
from importlib.metadata import entry_points, version
from typing import Any

import pluggy

from cambrian.core import hookspecs
from cambrian.core.errors import PluginError

hookimpl = pluggy.HookimplMarker("cambrian")

KINDS = {
    "scaffold": "cambrian_scaffolds",
    "operator": "cambrian_operators",
    "evaluator": "cambrian_evaluators",
    "domain": "cambrian_domains",
    "primitive": "cambrian_primitives",
    "llm": "cambrian_llm_backends",
    "executor": "cambrian_executors",
}


@dataclass(frozen=True)
class Registered:
    kind: str
    name: str
    component: Any
    plugin: str
    version: str


@dataclass(frozen=True)
class LoadFailure:
    plugin: str
    error: str


def _env_list(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


class PluginManager:
    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("cambrian")
        self.pm.add_hookspecs(hookspecs)
        self.failures: list[LoadFailure] = []
        self.versions: dict[str, str] = {}
        self._registry: dict[str, dict[str, Registered]] | None = None

    @property
    def hook(self) -> Any:
        return self.pm.hook

    # -- loading ---------------------------------------------------------------------

    def load_default_plugins(self) -> None:
        from cambrian.plugins import BUILTINS

        disabled = _env_list("CAMBRIAN_DISABLE_PLUGINS") or set()
        allowed = _env_list("CAMBRIAN_LOAD_PLUGINS")
        own_version = _cambrian_version()
        sources = [(name, module, own_version) for name, module in BUILTINS]
        for ep in entry_points(group="cambrian"):
            if allowed is not None and ep.name not in allowed:
                continue
            dist_version = ep.dist.version if ep.dist is not None else "?"
            sources.append((ep.name, ep.value, dist_version))
        for name, module, ver in sources:
            if name in disabled or self.pm.has_plugin(name):
                continue
            self._load(name, module, ver)

    def _load(self, name: str, module_path: str, ver: str) -> None:
        try:
            module = importlib.import_module(module_path)
        except Exception as exc:  # a broken plugin is reported and skipped, never fatal
            self.failures.append(LoadFailure(name, f"{type(exc).__name__}: {exc}"))
            print(f"cambrian: plugin {name!r} failed to load and was skipped: {exc}", file=sys.stderr)
            return
        self.register(module, name, ver)

    def register(self, plugin: Any, name: str | None = None, ver: str = "?") -> str:
        """Register a module or object of hook implementations; returns its name."""
        registered = self.pm.register(plugin, name=name)
        assert registered is not None
        self.versions[registered] = ver
        self._registry = None
        return registered

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.versions.pop(name, None)
        self._registry = None

    # -- the registry ----------------------------------------------------------------

    def registry(self) -> dict[str, dict[str, Registered]]:
        if self._registry is None:
            self._registry = self._build_registry()
        return self._registry

    def _build_registry(self) -> dict[str, dict[str, Registered]]:
        out: dict[str, dict[str, Registered]] = {}
        for kind, hook_name in KINDS.items():
            table: dict[str, Registered] = {}
            # Call each implementation on its own so every component knows its plugin.
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                plugin_name = self.pm.get_name(impl.plugin) or "?"
                for comp in impl.function() or ():
                    comp_name = getattr(comp, "name", None)
                    if not comp_name:
                        raise PluginError(
                            f"plugin {plugin_name!r} returned a {kind} without a 'name': {comp!r}"
                        )
                    if comp_name in table:
                        raise PluginError(
                            f"two plugins register a {kind} named {comp_name!r}: "
                            f"{table[comp_name].plugin!r} and {plugin_name!r}; disable one with "
                            "CAMBRIAN_DISABLE_PLUGINS"
                        )
                    table[comp_name] = Registered(
                        kind, comp_name, comp, plugin_name, self.versions.get(plugin_name, "?")
                    )
            out[kind] = table
        return out

    def get(self, kind: str, name: str) -> Any:
        """The component class (or object) registered under ``name`` for ``kind``."""
        table = self.registry()[kind]
        if name not in table:
            known = ", ".join(sorted(table)) or "none"
            raise PluginError(f"unknown {kind} {name!r}; known: {known} (see `cambrian plugins`)")
        return table[name].component

    def names(self, kind: str) -> list[str]:
        return sorted(self.registry()[kind])


def _cambrian_version() -> str:
    try:
        return version("cambrian")
    except Exception:
        return "0+unknown"


_manager: PluginManager | None = None
_manager_lock = threading.RLock()  # re-entrant: a plugin may ask for the manager at import


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager, loading plugins on first use (thread-safe)."""
    global _manager
    with _manager_lock:
        if _manager is None:
            pm = PluginManager()
            pm.load_default_plugins()
            _manager = pm  # published only once fully loaded
        return _manager


def reset_plugin_manager() -> None:
    """Forget the process-wide manager (tests that change the environment use this)."""
    global _manager
    _manager = None
