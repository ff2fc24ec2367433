"""``openai``: any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp server, ...).

Options:
  model (required)            model name sent to the endpoint
  base_url (None)             e.g. http://localhost:8000/v1 for vLLM; None = api.openai.com
  api_key_env ("OPENAI_API_KEY")  name of the environment variable holding the key; the key
                              itself is never an option, so it never reaches the store or a
                              candidate. Local servers (base_url set) work without one.
  temperature (0.7), max_tokens (2048), timeout (120 s per request)
  max_retries (4)             the openai SDK's own retries: 408/409/429, 5xx, connection
                              errors and timeouts are retried with exponential backoff (0.5 s
                              doubling, at most 8 s), or after the server's Retry-After
  price_prompt_per_1k (0.0), price_completion_per_1k (0.0): USD per 1000 tokens, for cost

A rejected key (401), no permission (403), an unknown model (404), an exhausted quota and a
host that still does not answer after the retries raise ``FatalLLMError``: the agent stops at
once with that reason. Other failures (a 400, a malformed body, retries used up on 429/5xx)
raise ``LLMError``: that step fails and the agent goes on.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from pydantic import Field

from cambrian import LLMBackend, LLMResponse, Options, hookimpl
from cambrian.plugins.llm.base import FatalLLMError, LLMError, price


@lru_cache(maxsize=1)
def _http_client() -> Any:
    """One connection pool for every backend of the process (creating one costs ~0.1 s)."""
    import openai

    return openai.DefaultHttpxClient()


# Status errors after which no retry can help: the agent stops with the reason.
_FATAL_STATUS = {401: "the key was rejected", 403: "permission denied", 404: "not found"}


def _failure(exc: Exception, what: str) -> LLMError:
    """The error to raise for an SDK exception (its retries are already spent)."""
    import openai

    name = type(exc).__name__
    if isinstance(exc, openai.APIStatusError):
        detail = _status_detail(exc)
        if exc.status_code in _FATAL_STATUS:
            hint = ("; check api_key_env and the key" if exc.status_code == 401 else
                    "; check the model name and base_url" if exc.status_code == 404 else "")
            return FatalLLMError(f"{what}: {_FATAL_STATUS[exc.status_code]} "
                                 f"(HTTP {exc.status_code}{hint}): {detail}")
        if exc.status_code == 429 and getattr(exc, "code", None) == "insufficient_quota":
            return FatalLLMError(f"{what}: quota exhausted (HTTP 429): {detail}")
        return LLMError(f"{what}: {name} (HTTP {exc.status_code}) after the retries: {detail}")
    if isinstance(exc, openai.APITimeoutError):  # slow, not absent: this step fails
        return LLMError(f"{what}: request timed out after the retries")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        why = f"{type(cause).__name__}: {cause}" if cause else str(exc)
        return FatalLLMError(f"{what}: host unreachable after the retries ({why})")
    return LLMError(f"{what}: {name}: {exc}")


def _status_detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        msg = err.get("message") if isinstance(err, dict) else err
        if msg:
            return str(msg)[:300]
    return str(getattr(exc, "message", exc))[:300]


class OpenAIBackend(LLMBackend):
    name = "openai"

    class Options(Options):
        model: str = Field(description="model name sent to the endpoint")
        base_url: str | None = Field(None, description="e.g. http://localhost:8000/v1; None: api.openai.com")
        api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the key")
        temperature: float = Field(0.7, ge=0)
        max_tokens: int = Field(2048, ge=1)
        timeout: float = Field(120.0, gt=0, description="seconds per request")
        max_retries: int = Field(4, ge=0, description="the SDK's retries of transient errors")
        price_prompt_per_1k: float = Field(0.0, ge=0, description="USD per 1000 prompt tokens")
        price_completion_per_1k: float = Field(0.0, ge=0, description="USD per 1000 completion tokens")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        o = self.options
        self.model, self.base_url, self.api_key_env = o.model, o.base_url, o.api_key_env
        self.temperature, self.max_tokens, self.timeout = o.temperature, o.max_tokens, o.timeout
        self.max_retries = o.max_retries
        self.prices = (o.price_prompt_per_1k, o.price_completion_per_1k)
        api_key_env, base_url = o.api_key_env, o.base_url
        key = os.environ.get(api_key_env)
        if not key and base_url is None:
            raise LLMError(f"llm 'openai': environment variable {api_key_env} is not set "
                           "(set it, or point base_url at a local server)")
        self._key = key or "not-needed"  # local servers ignore the key
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            import openai

            # The SDK retries transient failures itself, honouring the server's Retry-After.
            self._client = openai.OpenAI(api_key=self._key, base_url=self.base_url,
                                         timeout=self.timeout, max_retries=self.max_retries,
                                         http_client=_http_client())
        return self._client

    def complete(self, messages: list[dict[str, str]], **kwargs: Any) -> LLMResponse:
        import openai

        params = {"model": self.model, "messages": messages, "temperature": self.temperature,
                  "max_tokens": self.max_tokens, **kwargs}
        what = f"llm 'openai' ({self.model}{' at ' + self.base_url if self.base_url else ''})"
        try:
            resp = self.client().chat.completions.create(**params)
        except openai.OpenAIError as exc:
            raise _failure(exc, what) from exc
        except ValueError as exc:  # the SDK could not decode the body
            raise LLMError(f"{what}: malformed response body: {exc}") from exc
        return self._response(resp, messages)

    def _response(self, resp: Any, messages: list[dict[str, str]]) -> LLMResponse:
        choices = getattr(resp, "choices", None)
        if not choices:
            raise LLMError(f"llm 'openai' ({self.model}): malformed or empty response "
                           f"(no choices): {str(resp)[:200]!r}")
        message = getattr(choices[0], "message", None)
        text = getattr(message, "content", None)
        if not text or not text.strip():
            reason = getattr(choices[0], "finish_reason", None)
            raise LLMError(f"llm 'openai' ({self.model}): empty reply (finish_reason={reason})")
        usage = getattr(resp, "usage", None)
        # Servers that omit usage still count against token budgets: about 4 characters a token.
        prompt = getattr(usage, "prompt_tokens", None) or sum(len(m.get("content") or "")
                                                              for m in messages) // 4
        completion = getattr(usage, "completion_tokens", None) or max(1, len(text) // 4)
        return LLMResponse(text=text, prompt_tokens=int(prompt), completion_tokens=int(completion),
                           cost_usd=price(prompt, completion, *self.prices),
                           model=getattr(resp, "model", None) or self.model)


@hookimpl
def cambrian_llm_backends():
    return [OpenAIBackend]
