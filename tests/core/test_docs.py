"""Every hook is documented with a runnable example, and tested; the examples run."""

import inspect
import re
from pathlib import Path

import pytest

from cambrian.core import hookspecs

ROOT = Path(__file__).resolve().parents[2]
PLUGINS_DOC = (ROOT / "docs" / "plugins.md").read_text()
HOOKS = [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("cambrian_")]
EXAMPLES = re.findall(r"```python\n(.*?)```", PLUGINS_DOC, re.DOTALL)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_and_tested(hook):
    assert f"### {hook}" in PLUGINS_DOC, f"{hook} has no section in docs/plugins.md"
    assert any(hook in ex for ex in EXAMPLES), f"{hook} has no runnable example in docs/plugins.md"
    assert inspect.getdoc(getattr(hookspecs, hook)), f"{hook} has no docstring"
    this = Path(__file__).resolve()
    tests = [p for p in (ROOT / "tests").rglob("test_*.py") if p.resolve() != this]
    assert any(hook in p.read_text() for p in tests), f"no test mentions {hook}"


@pytest.mark.parametrize("i", range(len(EXAMPLES)))
def test_plugin_doc_examples_run(i, fresh_pm, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(EXAMPLES[i], f"docs/plugins.md example {i}", "exec"), {"__name__": "doc_example"})
