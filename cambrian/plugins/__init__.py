"""Built-in plugins, registered exactly like entry-point plugins.

Each entry is (plugin name, module path). Plugin modules must import cheaply
(no torch at module level) because every evaluation worker loads them.
"""

BUILTINS: list[tuple[str, str]] = [
    ("scaffolds.random", "cambrian.plugins.scaffolds.random"),
    ("scaffolds.greedy", "cambrian.plugins.scaffolds.greedy"),
    ("scaffolds.mcts", "cambrian.plugins.scaffolds.mcts"),
    ("scaffolds.evolutionary", "cambrian.plugins.scaffolds.evolutionary"),
    ("domains.toy", "cambrian.plugins.domains.toy"),
    ("evaluators.lm", "cambrian.plugins.evaluators.lm"),
    ("evaluators.synthetic", "cambrian.plugins.evaluators.synthetic"),
    ("executors.local", "cambrian.plugins.executors.local"),
    ("executors.ray", "cambrian.plugins.executors.ray"),
    ("llm.openai", "cambrian.plugins.llm.openai_compat"),
    ("llm.transformers", "cambrian.plugins.llm.transformers_local"),
    ("llm.cassette", "cambrian.plugins.llm.cassette"),
    ("operators.llm", "cambrian.plugins.operators.llm"),
    ("domains.python_task", "cambrian.plugins.domains.python_task"),
    ("evaluators.code", "cambrian.plugins.evaluators.code"),
    ("operators.seeds", "cambrian.plugins.operators.seeds"),
    ("primitives.builtin", "cambrian.plugins.primitives"),
    ("domains.compose", "cambrian.plugins.domains.compose"),
    ("domains.attention", "cambrian.plugins.domains.attention"),
    ("domains.script", "cambrian.plugins.domains.script"),
]
