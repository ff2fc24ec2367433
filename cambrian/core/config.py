"""Campaign configuration: YAML files validated by pydantic.

Errors name the file, the key path and the problem on one line. Dotted
overrides (``agents.0.scaffold=mcts``) are applied to the raw YAML before
validation, so they are checked exactly like the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cambrian.core.errors import ConfigError, validation_message
from cambrian.core.plugins import PluginManager, get_plugin_manager
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

    timeout_s: float = Field(900.0, gt=0)  # hard wall clock; the process group is killed
    memory_mb: int = Field(8192, ge=1)  # address space
    cpu_s: int | None = Field(None, ge=1)  # CPU time
    file_size_mb: int = Field(1024, ge=1)  # largest file a candidate may write
    disk_mb: int = Field(4096, ge=1)  # all a candidate may hold in its work directory (killed beyond)
    max_procs: int = Field(256, ge=1)  # processes/threads (enforced for non-root users)
    network: bool = False  # False: run in a fresh network namespace where the OS allows it
    threads: int = Field(1, ge=1)  # torch/BLAS threads per evaluation
    # Linux SCHED_IDLE, its session's autogroup at nice 19: the evaluation gets a core only when
    # nothing else wants it (the idle lane sets it for work that can wait: Executor.submit_idle)
    idle_priority: bool = False
    # Run candidate code even where it can't be isolated from the campaign's user (no root, no
    # user namespaces): `cambrian run --unsafe-no-isolation`. show and the report then say so.
    unsafe_no_isolation: bool = False


class AgentConfig(_Strict):
    name: str
    scaffold: ComponentRef = ComponentRef(name="random")
    operators: list[str] | None = None  # default: the domain's operators
    operator_options: dict[str, dict[str, Any]] = Field(default_factory=dict)  # by operator name
    llm: ComponentRef | None = None
    budget: Budget = Budget()
    persona: str = ""
    max_in_flight: int = Field(1, ge=1)  # evaluations this agent may have running at once

    @field_validator("budget")
    @classmethod
    def _no_agent_deadline(cls, budget: Budget) -> Budget:
        if budget.deadline_s is not None:
            raise ValueError("deadline_s bounds the whole run (its phases too): set it in the campaign's "
                             "budget, not an agent's")
        return budget


# Who gets the evaluation slots: the options of cambrian.campaign.supervisor's policies.
class _PolicyOptions(_Strict):
    max_insights: int = Field(8, ge=0, description="insights shown in each LLM prompt")


class FixedPolicy(_PolicyOptions):
    """Equal share: the fewest-evaluated eligible agent gets the next slot."""

    policy: Literal["fixed"] = "fixed"


class BanditPolicy(_PolicyOptions):
    """Slots by recent improvement per evaluation (UCB1 or Thompson sampling)."""

    policy: Literal["bandit"]
    rule: Literal["ucb", "thompson"] = "ucb"
    exploration: float = Field(0.5, ge=0, description="UCB's c")
    window: int = Field(20, ge=1, description="recent evaluations per agent the rule looks at")
    warmup: int = Field(2, ge=0, description="evaluations each agent gets before the rule applies")
    pause_after: int | None = Field(8, ge=1, description="evaluations in a row without improvement "
                                                        "before an agent is paused (null: never)")


Coordination = Union[FixedPolicy, BanditPolicy]


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
    # who gets the evaluation slots (see cambrian.campaign.supervisor); a bare name means defaults
    coordination: FixedPolicy | BanditPolicy = Field(default_factory=FixedPolicy, discriminator="policy")

    @field_validator("coordination", mode="before")
    @classmethod
    def _policy_name(cls, value: Any) -> Any:
        return {"policy": value} if isinstance(value, str) else value

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


def check_components(cfg: CampaignConfig, pm: PluginManager | None = None) -> None:
    """Resolve every named component through the plugin manager and validate its
    options against the component's ``Options`` model.

    Raises ConfigError naming the full key path (``agents.0.scaffold.options.n_draftz``)
    of the first component whose name or options are wrong.
    """
    pm = pm or get_plugin_manager()

    def check(kind: str, ref: ComponentRef, where: str) -> Any:
        table = pm.registry()[kind]
        if ref.name not in table:
            known = ", ".join(sorted(table)) or "none"
            raise ConfigError(f"{where}.name: unknown {kind} {ref.name!r}; known: {known} "
                              "(see `cambrian plugins`)")
        cls = table[ref.name].component
        cls.parse_options(ref.options, f"{where}.options")
        return cls

    domain = check("domain", cfg.domain, "domain")
    evaluator = cfg.evaluator.name if cfg.evaluator else domain.default_evaluator
    if cfg.evaluator is not None:
        check("evaluator", cfg.evaluator, "evaluator")
    elif evaluator not in pm.registry()["evaluator"]:
        raise ConfigError(f"domain {domain.name!r} names evaluator {evaluator!r}, which no plugin "
                          "registers (see `cambrian plugins`)")
    check("executor", cfg.executor, "executor")
    for i, agent in enumerate(cfg.agents):
        check("scaffold", agent.scaffold, f"agents.{i}.scaffold")
        if agent.llm is not None:
            check("llm", agent.llm, f"agents.{i}.llm")
        names = agent.operators or list(domain.default_operators)
        table = pm.registry()["operator"]
        for j, name in enumerate(names):
            if name not in table:
                known = ", ".join(sorted(table)) or "none"
                where = f"agents.{i}.operators.{j}" if agent.operators else f"domain {domain.name!r} default operators"
                raise ConfigError(f"{where}: unknown operator {name!r}; known: {known}")
        for name, options in agent.operator_options.items():
            where = f"agents.{i}.operator_options.{name}"
            if name not in names:
                raise ConfigError(f"{where}: {name!r} is not one of this agent's operators "
                                  f"({', '.join(names) or 'none'})")
            table[name].component.parse_options(options, where)
    domain.check_phases(split_approvals(cfg.phases)[0])


def split_approvals(phases: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The phases' own options, and the names of phases marked ``approve: true``.

    ``approve`` is the engine's key (the run waits for a person before the phase), so it
    is taken out before the domain's phase options are validated.
    """
    options, approve = {}, set()
    for key, opts in phases.items():
        if isinstance(opts, dict) and "approve" in opts:
            if not isinstance(opts["approve"], bool):
                raise ConfigError(f"phases.{key}.approve: must be true or false, got {opts['approve']!r}")
            if opts["approve"]:
                approve.add(key)
            opts = {k: v for k, v in opts.items() if k != "approve"}
        options[key] = opts
    return options, approve


def parse_config(data: Any, source: str = "<config>", overrides: list[str] = (), *,
                 pm: PluginManager | None = None, components: bool = True) -> CampaignConfig:
    """Validate a campaign config (a mapping) after applying dotted overrides.

    With ``components`` (the default) every named component is resolved through the
    plugin manager and its options checked against its model. Errors are one line:
    ``<source>: <key path>: <problem>``.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys, got {type(data).__name__}")
    for o in overrides:
        apply_override(data, o)
    try:
        cfg = CampaignConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{source}: {validation_message(err)}") from None
    if components:
        try:
            check_components(cfg, pm)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    return cfg


def load_config(path: str | Path, overrides: list[str] = (), *, pm: PluginManager | None = None,
                components: bool = True) -> CampaignConfig:
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
    return parse_config(data, str(path), overrides, pm=pm, components=components)
