"""Helpers shared by the LLM backends: errors, pricing, retry with backoff."""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from cambrian import CambrianError

T = TypeVar("T")


class LLMError(CambrianError):
    """An LLM call that failed for good (after any retries). Fails one step, never the campaign."""


class TransientLLMError(LLMError):
    """A failure worth retrying: rate limit, dropped connection, overloaded server."""


def price(prompt_tokens: int, completion_tokens: int, per_1k_prompt: float, per_1k_completion: float) -> float:
    return prompt_tokens / 1000 * per_1k_prompt + completion_tokens / 1000 * per_1k_completion


def with_backoff(call: Callable[[], T], *, retries: int, base_s: float, max_s: float,
                 transient: tuple[type[BaseException], ...], what: str,
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``call``; on a transient error wait base_s * 2^attempt (with jitter, capped) and retry."""
    for attempt in range(retries + 1):
        try:
            return call()
        except transient as exc:
            if attempt == retries:
                raise LLMError(f"{what}: giving up after {retries + 1} attempts: "
                               f"{type(exc).__name__}: {exc}") from exc
            delay = min(max_s, base_s * 2 ** attempt) * (0.5 + random.random() / 2)
            sleep(delay)
    raise AssertionError("unreachable")


def request_hash(messages: list[dict[str, str]]) -> str:
    """Identity of a request for cassettes: the canonical JSON of its messages."""
    payload = json.dumps([{"role": m.get("role"), "content": m.get("content")} for m in messages],
                         sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
