"""Where candidate code and evaluation workers run: the sandbox, the warm fork server, the worker.

Executors and code evaluators use this layer; ``cambrian.core`` does not import it.
"""
