"""The plugin manager: loads built-ins and third-party plugins the same way.

Every plugin, built-in or not, is a module named by an entry point in the
``cambrian`` group; the built-ins are declared in cambrian's own
``[project.entry-points.cambrian]`` (pyproject.toml), so core names no plugin.
Each is imported by :meth:`PluginManager._load` and registered under its
entry-point name; built-ins first. In a source checkout the built-ins are read
from its ``pyproject.toml`` (in declared order), so an editable install made
before the list changed still finds them.

Environment:
  CAMBRIAN_LOAD_PLUGINS     comma list of third-party plugin names to load (empty = none)
  CAMBRIAN_DISABLE_PLUGINS  comma list of plugin names (built-in or not) to skip
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import sys
import threading
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:
    import tomllib
except ImportError:  # Python 3.10: no source-checkout fallback, installed metadata only
    tomllib = None  # type: ignore[assignment]

import pluggy

from cambrian.core import hookspecs
from cambrian.core.errors import PluginError

if TYPE_CHECKING:
    from cambrian.core.components import Domain, Evaluator, Executor, LLMBackend, Operator, Scaffold

DISTRIBUTION = "cambrian"  # the distribution whose entry points are the built-ins

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
HOOKS = [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("cambrian_")]


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
        """Load every entry point of the ``cambrian`` group that the environment allows."""
        disabled = _env_list("CAMBRIAN_DISABLE_PLUGINS") or set()
        allowed = _env_list("CAMBRIAN_LOAD_PLUGINS")
        builtins: dict[str, tuple[str, str]] = {}  # name -> (module, version)
        third_party: list[EntryPoint] = []
        for ep in entry_points(group="cambrian"):
            if _is_builtin(ep):
                builtins[ep.name] = (ep.value, ep.dist.version if ep.dist is not None else "?")
            else:
                third_party.append(ep)
        declared = _declared_in_checkout()
        if declared:  # a source checkout: its pyproject.toml is what this code expects
            ver = next(iter(builtins.values()))[1] if builtins else "0+checkout"
            builtins = {name: (module, ver) for name, module in declared.items()}
        if not builtins:
            self._fail("cambrian", "cambrian's own entry points are missing: install the package "
                       "(pip install -e .) so its built-in plugins can be found")
        sources = [(name, module, ver) for name, (module, ver) in builtins.items()]
        sources += [(ep.name, ep.value, ep.dist.version if ep.dist is not None else "?")
                    for ep in third_party if allowed is None or ep.name in allowed]
        for name, module, ver in sources:
            if name in disabled or self.pm.has_plugin(name):
                continue
            self._load(name, module, ver)

    def _fail(self, name: str, error: str) -> None:
        self.failures.append(LoadFailure(name, error))
        print(f"cambrian: plugin {name!r} failed to load and was skipped: {error}", file=sys.stderr)

    def _load(self, name: str, module_path: str, ver: str) -> None:
        try:
            module = importlib.import_module(module_path)
            self.register(module, name, ver)
        except Exception as exc:  # a broken plugin is reported and skipped, never fatal
            self._fail(name, f"{type(exc).__name__}: {exc}" if not isinstance(exc, PluginError) else str(exc))

    def register(self, plugin: Any, name: str | None = None, ver: str = "?") -> str:
        """Register a module or object of hook implementations; returns its name.

        A hook implementation that matches no hook (a misspelled name), or a
        ``cambrian_*`` function without ``@hookimpl``, is a :class:`PluginError`
        naming the plugin and the nearest hook; nothing of the plugin stays registered.
        """
        registered = self.pm.register(plugin, name=name)
        assert registered is not None
        try:
            self._check(plugin, registered)
        except PluginError:
            self.pm.unregister(name=registered)
            raise
        self.versions[registered] = ver
        self._registry = None
        return registered

    def _check(self, plugin: Any, name: str) -> None:
        hooks = set(HOOKS)
        for attr in dir(plugin):
            opts = self.pm.parse_hookimpl_opts(plugin, attr)
            if opts is not None and attr not in hooks and not opts.get("optionalhook"):
                raise PluginError(f"plugin {name!r}: {_unknown_hook(attr)}")
            if opts is None and attr.startswith("cambrian_") and callable(getattr(plugin, attr, None)):
                what = (f"{attr} is not marked @cambrian.hookimpl, so it would never be called"
                        if attr in hooks else _unknown_hook(attr))
                raise PluginError(f"plugin {name!r}: {what}")
        try:
            self.pm.check_pending()  # pluggy's own check, should a hook slip past the one above
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {name!r}: {exc}") from None

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

    # -- typed accessors: the component class for a name, or a PluginError naming the known ones

    def scaffold(self, name: str) -> type["Scaffold"]:
        return self.get("scaffold", name)

    def operator(self, name: str) -> type["Operator"]:
        return self.get("operator", name)

    def evaluator(self, name: str) -> type["Evaluator"]:
        return self.get("evaluator", name)

    def domain(self, name: str) -> type["Domain"]:
        return self.get("domain", name)

    def llm_backend(self, name: str) -> type["LLMBackend"]:
        return self.get("llm", name)

    def executor(self, name: str) -> type["Executor"]:
        return self.get("executor", name)

    def primitive(self, name: str) -> Any:
        """A primitive as its plugin offered it (a class or an instance)."""
        return self.get("primitive", name)


def _is_builtin(ep: EntryPoint) -> bool:
    dist = ep.dist
    return dist is not None and (dist.metadata["Name"] or "").lower() == DISTRIBUTION


def _declared_in_checkout() -> dict[str, str]:
    """The built-ins declared in the ``pyproject.toml`` beside this package, when running from
    a source checkout (an editable install included): there the declaration wins over the
    installed metadata, which is only as new as the last ``pip install -e .``."""
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    if tomllib is None or not pyproject.is_file():
        return {}
    try:
        project = tomllib.loads(pyproject.read_text()).get("project", {})
    except (OSError, ValueError):
        return {}
    if project.get("name") != DISTRIBUTION:
        return {}
    return dict(project.get("entry-points", {}).get("cambrian", {}))


def _unknown_hook(attr: str) -> str:
    close = difflib.get_close_matches(attr, HOOKS, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; the hooks are: {', '.join(HOOKS)}"
    return f"{attr!r} is not a Cambrian hook{hint}"


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
