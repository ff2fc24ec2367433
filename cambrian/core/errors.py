"""User-facing errors: one readable line, exit code 2 at the CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class CambrianError(Exception):
    """A problem the user can fix (bad config, unknown component, missing file).

    The message is one line that names the problem and what to do about it.
    """


class ConfigError(CambrianError, ValueError):
    """A bad config value (also a ValueError: components refuse bad options with it)."""


class PluginError(CambrianError):
    pass


class StoreError(CambrianError):
    pass


class AgentStop(CambrianError):
    """An agent cannot go on at all (its LLM rejects the key, the model does not exist, the
    host does not answer): raised from a step, it stops that agent with this message as the
    reason, while the other agents carry on. A campaign whose every agent stopped this way
    failed (``cambrian run`` exits 1)."""


def validation_message(err: "ValidationError", prefix: str = "", model: type | None = None) -> str:
    """A pydantic ValidationError as one line: ``path.to.key: problem; ...``.

    ``prefix`` is prepended to every key path (``agents.0.scaffold.options``), so
    the line names the full path of the key in the campaign config. With ``model``
    (the pydantic model validated), an unknown top-level key lists the known ones.
    """
    parts = []
    for e in err.errors():
        loc = ".".join([*(prefix.split(".") if prefix else ()), *(str(p) for p in e["loc"])])
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, ")
        fields = getattr(model, "model_fields", None)
        if e["type"] == "extra_forbidden" and len(e["loc"]) == 1 and fields is not None:
            msg += f" (known: {', '.join(fields) or 'none, it takes no options'})"
        parts.append(f"{loc or '(top level)'}: {msg}")
    return "; ".join(parts)


class InvalidCandidate(Exception):
    """Raised by an evaluator: the candidate ran but broke the task's rules (it peeks at future
    tokens, say). The node is recorded ``invalid`` with this message, never ranked."""
