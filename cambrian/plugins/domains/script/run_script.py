"""Bootstrap for a task script inside the sandbox: ``python run_script.py train.py [args]``.

The sandbox mounts a private /tmp, so a run directory under /tmp is reachable
only through the working directory, by relative paths: Python's own script
runner and its path-based importer use absolute ones. This runs the script
from its relative path and imports the task's own modules (``prepare.py``)
from the working directory, also by relative path. Standard library only.
"""

import importlib.abc
import importlib.util
import os
import sys


class RelativeLoader(importlib.abc.Loader):
    """Executes a module file by its relative path (``spec_from_file_location`` would make it absolute)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def create_module(self, spec):
        return None  # the default module object

    def exec_module(self, module) -> None:
        module.__file__ = self.path
        with open(self.path) as f:
            exec(compile(f.read(), self.path, "exec"), module.__dict__)


class WorkdirFinder:
    """Finds top-level modules ``name.py`` / ``name/__init__.py`` in the working directory."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if path is not None or "." in name:
            return None
        for rel in (f"{name}.py", os.path.join(name, "__init__.py")):
            if os.path.isfile(rel):
                package = rel.endswith("__init__.py")
                return importlib.util.spec_from_loader(name, RelativeLoader(rel), is_package=package)
        return None


def main() -> None:
    sys.path.pop(0)  # this file's folder: the harness's modules must not shadow the task's
    sys.meta_path.insert(0, WorkdirFinder)
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    with open(script) as f:
        code = compile(f.read(), script, "exec")
    exec(code, {"__name__": "__main__", "__file__": script, "__builtins__": __builtins__})


if __name__ == "__main__":
    main()
