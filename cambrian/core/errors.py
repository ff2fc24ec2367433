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
