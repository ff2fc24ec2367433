"""User-facing errors: one readable line, exit code 2 at the CLI."""


class CambrianError(Exception):
    """A problem the user can fix (bad config, unknown component, missing file).

    The message is one line that names the problem and what to do about it.
    """


class ConfigError(CambrianError):
    pass


class PluginError(CambrianError):
    pass


class StoreError(CambrianError):
    pass


class AgentStop(CambrianError):
    """An agent cannot go on at all (its LLM rejects the key, the model does not exist, the
    host does not answer): raised from a step, it stops that agent with this message as the
    reason, while the other agents carry on. A campaign whose every agent stopped this way
    failed (``cambrian run`` exits 1)."""
