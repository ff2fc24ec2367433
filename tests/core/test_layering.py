"""The layers' dependencies point one way (docs/architecture.md), checked on every import
statement of every module, function-level ones included, by walking the source with ast."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "cambrian"

# layer -> the layers it must not import
FORBIDDEN = {
    "core": ("campaign", "plugins", "architectures", "scaling", "execution"),
    "campaign": ("plugins", "architectures", "scaling", "execution"),
    "architectures": ("core", "campaign", "plugins", "scaling", "execution"),
    "scaling": ("campaign", "plugins"),
    "execution": ("campaign", "plugins", "architectures", "scaling"),
}


def imports(path: Path, package: str | None = None) -> list[tuple[int, str]]:
    """(line, module) for every import in ``path``, relative ones resolved against ``package``
    (by default the one ``path`` is in)."""
    tree = ast.parse(path.read_text(), str(path))
    if package is None:
        package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([module] if module else []))
            out.append((node.lineno, module))
            out += [(node.lineno, f"{module}.{a.name}") for a in node.names]  # `from cambrian import plugins`
    return out


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "cambrian" else None


def test_the_walker_sees_function_level_relative_and_from_package_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import os\n"
                     "def f():\n    from cambrian.plugins.domains import toy\n"
                     "def g():\n    from ..architectures import spec\n"
                     "from cambrian import scaling\n")
    found = {layer_of(m) for _, m in imports(probe, "cambrian.core")}
    assert {"plugins", "architectures", "scaling"} <= found


def test_every_layer_has_its_rule():
    """A new package under cambrian/ is a new layer: it says what it must not import."""
    layers = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert layers - {"plugins"} == set(FORBIDDEN), "add the new layer to FORBIDDEN and docs/architecture.md"


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_point_one_way(layer):
    bad = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for line, module in imports(path):
            if layer_of(module) in FORBIDDEN[layer]:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert not bad, f"{layer} must not import {', '.join(FORBIDDEN[layer])}:\n" + "\n".join(bad)


def test_the_top_level_package_imports_only_core_and_the_engine():
    top = {layer_of(m) for _, m in imports(PACKAGE / "__init__.py")} - {None}
    assert top <= {"core", "campaign"}, top


def test_architectures_and_scaling_import_at_a_modules_top_without_torch():
    """Plugins import both at their top; the torch-bound submodules load on first use."""
    import subprocess
    import sys

    code = ("import sys\n"
            "import cambrian\n"
            "from cambrian import architectures, scaling\n"
            "architectures.ArchSpec.from_dict({'d_model': 16, 'layers': ['attention', 'swiglu']})\n"
            "assert 'torch' not in sys.modules, 'torch imported too early'\n"
            "assert scaling.trainer.__name__ == 'cambrian.scaling.trainer' and 'torch' in sys.modules\n"
            "assert architectures.model.build_model\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


def _function_level_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of the imports inside function bodies that name cambrian or torch."""
    tree = ast.parse(path.read_text(), str(path))
    out = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, ast.Import):
                    out |= {(node.lineno, a.name) for a in node.names}
                elif isinstance(node, ast.ImportFrom):
                    out.add((node.lineno, "." * node.level + (node.module or "")))
    return sorted((line, m) for line, m in out if m.split(".")[0] in ("cambrian", "torch") or m.startswith("."))


def test_every_function_level_import_of_cambrian_or_torch_says_why():
    """Imports belong at a module's top; one inside a function closes an import cycle or keeps a
    heavy dependency (torch, langgraph, transformers, typer) out of light imports, and its comment
    says which: on its line, or on the line above its block of imports."""
    silent = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text().splitlines()
        for line, module in _function_level_imports(path):
            i = line - 1
            while i > 0 and lines[i - 1].strip().startswith(("import ", "from ")) and "#" not in lines[i]:
                i -= 1  # up the block of imports this one is in
            if "#" not in lines[line - 1] and not lines[i - 1].strip().startswith("#"):
                silent.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert not silent, "function-level imports without a comment saying why:\n" + "\n".join(silent)
