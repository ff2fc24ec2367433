"""The openai backend against a local OpenAI-compatible server: retries, errors, bad bodies."""

from __future__ import annotations

import logging

import pytest

from cambrian.plugins.llm.base import FatalLLMError, LLMError
from cambrian.plugins.llm.openai_compat import OpenAIBackend
from tests.llm.fake_openai import FakeOpenAI, completion

FAST = {"timeout": 10, "max_retries": 2}


def backend(server: FakeOpenAI, **kw) -> OpenAIBackend:
    return OpenAIBackend(model="fake-model", base_url=server.base_url, **{**FAST, **kw})


def test_reply_tokens_and_cost():
    with FakeOpenAI([(200, completion("hello", prompt_tokens=1000, completion_tokens=500))]) as srv:
        r = backend(srv, price_prompt_per_1k=0.5, price_completion_per_1k=2.0).complete(
            [{"role": "user", "content": "hi"}])
    assert (r.text, r.prompt_tokens, r.completion_tokens, r.model) == ("hello", 1000, 500, "fake-model")
    assert r.cost_usd == pytest.approx(0.5 + 1.0)
    assert srv.requests[0]["messages"] == [{"role": "user", "content": "hi"}]
    assert srv.requests[0]["model"] == "fake-model"


def test_rate_limit_then_success_is_retried():
    script = [(429, '{"error": {"message": "slow down", "type": "rate_limit"}}'),
              (429, '{"error": {"message": "slow down", "type": "rate_limit"}}'), "ok now"]
    with FakeOpenAI(script) as srv:
        r = backend(srv).complete([{"role": "user", "content": "x"}])
    assert r.text == "ok now" and len(srv.requests) == 3


def test_rate_limit_retries_are_bounded():
    with FakeOpenAI([(429, '{"error": {"message": "slow down"}}')]) as srv:
        with pytest.raises(LLMError, match="RateLimitError .HTTP 429. after the retries: slow down") as info:
            backend(srv, max_retries=2).complete([{"role": "user", "content": "x"}])
    assert len(srv.requests) == 3
    assert not isinstance(info.value, FatalLLMError)  # a busy server fails the step, not the agent


def test_retry_after_is_honoured(caplog):
    """The SDK waits what the server asks (here 0.3 s), not its own backoff."""
    busy = (429, '{"error": {"message": "slow down"}}', {"Retry-After": "0.3"})
    caplog.set_level(logging.INFO, logger="openai")
    with FakeOpenAI([busy, "ok now"]) as srv:
        assert backend(srv).complete([{"role": "user", "content": "x"}]).text == "ok now"
    assert len(srv.requests) == 2
    assert srv.times[1] - srv.times[0] >= 0.3
    assert any("Retrying request in 0.300000 seconds" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("status, message, says", [
    (401, "Incorrect API key provided: sk-bad", "the key was rejected .HTTP 401"),
    (403, "You are not allowed to use this model", "permission denied .HTTP 403"),
    (404, "The model `nosuch` does not exist", "not found .HTTP 404"),
])
def test_auth_permission_and_unknown_model_are_fatal_at_once(status, message, says):
    with FakeOpenAI([(status, '{"error": {"message": "%s"}}' % message)]) as srv:
        with pytest.raises(FatalLLMError, match=says) as info:
            backend(srv).complete([{"role": "user", "content": "x"}])
    assert len(srv.requests) == 1  # not retried
    assert message in str(info.value) and srv.base_url in str(info.value)


def test_exhausted_quota_is_fatal():
    body = '{"error": {"message": "You exceeded your quota", "code": "insufficient_quota"}}'
    with FakeOpenAI([(429, body)]) as srv, pytest.raises(FatalLLMError, match="quota exhausted"):
        backend(srv, max_retries=0).complete([{"role": "user", "content": "x"}])


def test_server_error_then_success_is_retried():
    with FakeOpenAI([(503, '{"error": {"message": "loading"}}'), "fine"]) as srv:
        assert backend(srv).complete([{"role": "user", "content": "x"}]).text == "fine"


def test_client_error_is_not_retried():
    with FakeOpenAI([(400, '{"error": {"message": "bad request: context too long"}}')]) as srv:
        with pytest.raises(LLMError, match="context too long"):
            backend(srv).complete([{"role": "user", "content": "x"}])
    assert len(srv.requests) == 1


def test_unreachable_host_is_retried_then_fatal():
    srv = FakeOpenAI(["unused"])  # bound but never served: connections are refused once closed
    url = srv.base_url
    srv.server.server_close()
    b = OpenAIBackend(model="m", base_url=url, **{**FAST, "max_retries": 1})
    with pytest.raises(FatalLLMError, match=f"at {url}.*host unreachable after the retries .ConnectError"):
        b.complete([{"role": "user", "content": "x"}])


@pytest.mark.parametrize("body, match", [
    ("this is not json", "malformed|no choices|Error"),
    ('{"id": "x", "object": "chat.completion", "choi', "malformed|no choices|Error"),  # truncated body
    ('{"id": "x", "object": "chat.completion", "model": "m", "choices": []}', "no choices"),
    (completion(""), "empty reply"),
    (completion(None), "empty reply"),
])
def test_malformed_empty_and_truncated_bodies_raise(body, match):
    with FakeOpenAI([(200, body)]) as srv, pytest.raises(LLMError, match=match):
        backend(srv).complete([{"role": "user", "content": "x"}])


def test_truncated_reply_text_is_returned_for_the_operator_to_repair():
    text = "Here it is:\n```json\n[1.0, 2."
    with FakeOpenAI([(200, completion(text, finish_reason="length"))]) as srv:
        assert backend(srv).complete([{"role": "user", "content": "x"}]).text == text


def test_missing_usage_is_estimated():
    with FakeOpenAI([(200, completion("a" * 40, usage=False))]) as srv:
        r = backend(srv).complete([{"role": "user", "content": "b" * 80}])
    assert (r.prompt_tokens, r.completion_tokens) == (20, 10)


def test_key_comes_from_the_named_environment_variable(monkeypatch):
    monkeypatch.setenv("MY_TEST_KEY", "sk-test-secret")
    with FakeOpenAI(["hi"]) as srv:
        backend(srv, api_key_env="MY_TEST_KEY").complete([{"role": "user", "content": "x"}])
    auth = {k.lower(): v for k, v in srv.headers[0].items()}["authorization"]
    assert auth == "Bearer sk-test-secret"


def test_missing_key_without_base_url_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    with pytest.raises(LLMError, match="NO_SUCH_KEY is not set"):
        OpenAIBackend(model="m", api_key_env="NO_SUCH_KEY")
