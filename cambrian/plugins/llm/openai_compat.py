"""``openai``: any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp server, ...).

Options:
  model (required)            model name sent to the endpoint
  base_url (None)             e.g. http://localhost:8000/v1 for vLLM; None = api.openai.com
  api_key_env ("OPENAI_API_KEY")  name of the environment variable holding the key; the key
                              itself is never an option, so it never reaches the store or a
                              candidate. Local servers (base_url set) work without one.
  temperature (0.7), max_tokens (2048), timeout (120 s per request)
  max_retries (4), backoff_s (1.0), backoff_max_s (30): rate limits (429), connection errors,
                              timeouts and 5xx answers are retried with exponential backoff;
                              any other error raises at once
  price_prompt_per_1k (0.0), price_completion_per_1k (0.0): USD per 1000 tokens, for cost
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from cambrian import LLMBackend, LLMResponse, hookimpl
from cambrian.plugins.llm.base import LLMError, TransientLLMError, price, with_backoff


@lru_cache(maxsize=1)
def _http_client() -> Any:
    """One connection pool for every backend of the process (creating one costs ~0.1 s)."""
    import openai

    return openai.DefaultHttpxClient()


class OpenAIBackend(LLMBackend):
    name = "openai"

    def __init__(self, model: str, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 temperature: float = 0.7, max_tokens: int = 2048, timeout: float = 120.0,
                 max_retries: int = 4, backoff_s: float = 1.0, backoff_max_s: float = 30.0,
                 price_prompt_per_1k: float = 0.0, price_completion_per_1k: float = 0.0,
                 **options: Any) -> None:
        super().__init__(**options)
        self.model, self.base_url, self.api_key_env = model, base_url, api_key_env
        self.temperature, self.max_tokens, self.timeout = temperature, max_tokens, timeout
        self.max_retries, self.backoff_s, self.backoff_max_s = max_retries, backoff_s, backoff_max_s
        self.prices = (price_prompt_per_1k, price_completion_per_1k)
        key = os.environ.get(api_key_env)
        if not key and base_url is None:
            raise LLMError(f"llm 'openai': environment variable {api_key_env} is not set "
                           "(set it, or point base_url at a local server)")
        self._key = key or "not-needed"  # local servers ignore the key
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            import openai

            # Retries are ours (bounded, logged as one call); the SDK's are switched off.
            self._client = openai.OpenAI(api_key=self._key, base_url=self.base_url,
                                         timeout=self.timeout, max_retries=0,
                                         http_client=_http_client())
        return self._client

    def complete(self, messages: list[dict[str, str]], **kwargs: Any) -> LLMResponse:
        import openai

        params = {"model": self.model, "messages": messages, "temperature": self.temperature,
                  "max_tokens": self.max_tokens, **kwargs}

        def call() -> Any:
            try:
                return self.client().chat.completions.create(**params)
            except openai.InternalServerError as exc:  # 5xx: an overloaded or restarting server
                raise TransientLLMError(str(exc)) from exc

        transient = (openai.RateLimitError, openai.APIConnectionError, TransientLLMError)
        try:
            resp = with_backoff(call, retries=self.max_retries, base_s=self.backoff_s,
                                max_s=self.backoff_max_s, transient=transient,
                                what=f"llm 'openai' ({self.model})")
        except LLMError:
            raise
        except openai.OpenAIError as exc:
            raise LLMError(f"llm 'openai' ({self.model}): {type(exc).__name__}: {exc}") from exc
        except ValueError as exc:  # the SDK could not decode the body
            raise LLMError(f"llm 'openai' ({self.model}): malformed response body: {exc}") from exc
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
