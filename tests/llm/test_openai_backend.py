"""The openai backend against a local OpenAI-compatible server: retries, errors, bad bodies."""

from __future__ import annotations

import pytest

from cambrian.plugins.llm.base import LLMError
from cambrian.plugins.llm.openai_compat import OpenAIBackend
from tests.llm.fake_openai import FakeOpenAI, completion

FAST = {"backoff_s": 0.001, "backoff_max_s": 0.01, "timeout": 10}


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
        with pytest.raises(LLMError, match="giving up after 3 attempts"):
            backend(srv, max_retries=2).complete([{"role": "user", "content": "x"}])
    assert len(srv.requests) == 3


def test_server_error_then_success_is_retried():
    with FakeOpenAI([(503, '{"error": {"message": "loading"}}'), "fine"]) as srv:
        assert backend(srv).complete([{"role": "user", "content": "x"}]).text == "fine"


def test_client_error_is_not_retried():
    with FakeOpenAI([(400, '{"error": {"message": "bad request: context too long"}}')]) as srv:
        with pytest.raises(LLMError, match="context too long"):
            backend(srv).complete([{"role": "user", "content": "x"}])
    assert len(srv.requests) == 1


def test_network_error_is_retried_then_raises():
    srv = FakeOpenAI(["unused"])  # bound but never served: connections are refused once closed
    url = srv.base_url
    srv.server.server_close()
    b = OpenAIBackend(model="m", base_url=url, max_retries=1, **FAST)
    with pytest.raises(LLMError, match="giving up after 2 attempts: APIConnectionError"):
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
