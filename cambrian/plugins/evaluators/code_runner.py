"""Runs one candidate inside the sandbox: ``python code_runner.py ENTRY``. Standard library only.

Reads ``inputs.json`` (keyword arguments), imports ``candidate.py`` from the
working directory, calls ``ENTRY(**inputs)`` and writes ``{"output": ...}`` to
``output.json``. The output is only the candidate's answer: the harness scores it.
"""

import json
import os
import sys
import types


def main() -> int:
    entry = sys.argv[1]
    with open("inputs.json") as f:
        inputs = json.load(f)
    # Relative paths only: the directories above the work dir need not be searchable by this uid.
    module = types.ModuleType("candidate")
    module.__file__ = "candidate.py"
    sys.modules["candidate"] = module
    with open("candidate.py") as f:
        exec(compile(f.read(), "candidate.py", "exec"), module.__dict__)
    fn = getattr(module, entry, None)
    if not callable(fn):
        raise SystemExit(f"the candidate defines no function {entry!r}")
    output = fn(**inputs)
    with open("output.json.tmp", "w") as f:
        json.dump({"output": output}, f)
    os.replace("output.json.tmp", "output.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
