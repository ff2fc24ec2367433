"""Campaign configuration: YAML files validated by pydantic.

Errors name the file, the key path and the problem on one line. Dotted
overrides (``agents.0.scaffold=mcts``) are applied to the raw YAML before
validation, so they are checked exactly like the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cambrian.core.errors import ConfigError
from cambrian.core.records import Budget


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComponentRef(_Strict):
    """A named component with options; a bare string means no options."""

    name: str
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_str(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value


class SandboxLimits(_Strict):
    """Limits on every evaluation process."""

    timeout_s: float = 900.0  # hard wall clock; the process group is killed
    memory_mb: int = 8192  # address space
    cpu_s: int | None = None  # CPU time
    file_size_mb: int = 1024  # largest file a candidate may write
    max_procs: int = 256  # processes/threads (enforced for non-root users)
    network: bool = False  # False: run in a fresh network namespace where the OS allows it
    threads: int = 1  # torch/BLAS threads per evaluation


class AgentConfig(_Strict):
    name: str
    scaffold: ComponentRef = ComponentRef(name="random")
    operators: list[str] | None = None  # default: the domain's operators
    operator_options: dict[str, dict[str, Any]] = Field(default_factory=dict)  # by operator name
    llm: ComponentRef | None = None
    budget: Budget = Budget()
    persona: str = ""
    max_in_flight: int = 1  # evaluations this agent may have running at once


class CampaignConfig(_Strict):
    name: str = "campaign"
    seed: int = 0
    domain: ComponentRef
    evaluator: ComponentRef | None = None  # default: the domain's evaluator
    executor: ComponentRef = ComponentRef(name="local", options={"workers": 2})
    budget: Budget = Budget(max_nodes=20)
    sandbox: SandboxLimits = SandboxLimits()
    agents: list[AgentConfig] = Field(min_length=1)
    phases: dict[str, Any] = Field(default_factory=dict)  # post-search phases, domain-specific

    @field_validator("agents")
    @classmethod
    def _unique_agents(cls, agents: list[AgentConfig]) -> list[AgentConfig]:
        names = [a.name for a in agents]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"agent names must be unique; repeated: {', '.join(sorted(dup))}")
        return agents


def apply_override(data: dict[str, Any], override: str) -> None:
    """Apply ``a.b.0.c=value`` (value parsed as YAML) to ``data`` in place."""
    if "=" not in override:
        raise ConfigError(f"override {override!r} must look like key.path=value")
    path, raw = override.split("=", 1)
    keys = path.strip().split(".")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    target: Any = data
    for i, key in enumerate(keys):
        last = i == len(keys) - 1
        where = ".".join(keys[: i + 1])
        if isinstance(target, list):
            if not key.isdigit() or int(key) >= len(target):
                raise ConfigError(f"override {path!r}: {where} is not an index into a list of {len(target)}")
            if last:
                target[int(key)] = value
            else:
                target = target[int(key)]
        elif isinstance(target, dict):
            if last:
                target[key] = value
            else:
                if isinstance(target.get(key), str):  # component given as a bare name
                    target[key] = {"name": target[key]}
                target = target.setdefault(key, {})
        else:
            raise ConfigError(f"override {path!r}: {'.'.join(keys[:i])} is not a mapping or list")


def _format_errors(source: str, err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        parts.append(f"{loc}: {msg}")
    return f"{source}: " + "; ".join(parts)


def parse_config(data: Any, source: str = "<config>", overrides: list[str] = ()) -> CampaignConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys, got {type(data).__name__}")
    for o in overrides:
        apply_override(data, o)
    try:
        return CampaignConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(source, err)) from None


def load_config(path: str | Path, overrides: list[str] = ()) -> CampaignConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found; pass the path of a campaign YAML file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{where}: malformed YAML: {problem}") from None
    return parse_config(data, str(path), overrides)
