"""Helpers shared by the LLM backends: errors, pricing, request identity."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cambrian import CambrianError
from cambrian.core.errors import AgentStop


class LLMError(CambrianError):
    """An LLM call that failed for good (after any retries). Fails one step, never the campaign."""


class FatalLLMError(LLMError, AgentStop):
    """The backend cannot serve this agent at all (rejected key, no permission, unknown model,
    unreachable host, exhausted quota): retrying is pointless, so the agent stops at once."""


def price(prompt_tokens: int, completion_tokens: int, per_1k_prompt: float, per_1k_completion: float) -> float:
    return prompt_tokens / 1000 * per_1k_prompt + completion_tokens / 1000 * per_1k_completion


def request_hash(messages: list[dict[str, str]]) -> str:
    """Identity of a request for cassettes: the canonical JSON of its messages."""
    payload = json.dumps([{"role": m.get("role"), "content": m.get("content")} for m in messages],
                         sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
