"""The transformers backend on a tiny randomly initialised Llama saved locally (no downloads)."""

from __future__ import annotations

import pytest

from cambrian import Campaign, Store
from cambrian.core.plugins import get_plugin_manager
from tests.llm.conftest import llm_toy_config


def save_tiny_model(path, chat_template: str | None) -> None:
    """A character-level tokenizer (tokenizers BPE with no merges) and a 1-layer Llama."""
    import torch
    from tokenizers import Tokenizer, decoders, models
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    chars = [chr(c) for c in range(32, 127)] + ["\n"]
    vocab = {"<unk>": 0, "<eos>": 1, **{c: i + 2 for i, c in enumerate(chars)}}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>", pad_token="<eos>")
    if chat_template:
        fast.chat_template = chat_template
    fast.save_pretrained(path)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024,
                      eos_token_id=1, pad_token_id=1, bos_token_id=None)
    LlamaForCausalLM(cfg).save_pretrained(path)


TEMPLATE = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}<assistant>"


@pytest.mark.parametrize("template", [TEMPLATE, None], ids=["chat-template", "plain-transcript"])
def test_local_model_completes_with_token_counts(tmp_path, template):
    save_tiny_model(tmp_path / "tiny", template)
    llm = get_plugin_manager().get("llm", "transformers")(path=str(tmp_path / "tiny"), max_new_tokens=6)
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    r = llm.complete(messages)
    prompt = llm.prompt_text(messages)
    if template:
        assert prompt == "<system>be brief\n<user>hi\n<assistant>"
    else:
        assert prompt == "system: be brief\nuser: hi\nassistant:"
    assert r.prompt_tokens == len(prompt)  # one token per character
    assert 1 <= r.completion_tokens <= 6 and r.model == "tiny" and r.cost_usd == 0.0
    assert r == llm.complete(messages)  # greedy decoding is deterministic


def test_local_model_as_an_agents_llm(tmp_path):
    """Random weights write no valid candidate: every step fails, the campaign still ends cleanly."""
    save_tiny_model(tmp_path / "tiny", TEMPLATE)
    llm = {"name": "transformers", "options": {"path": str(tmp_path / "tiny"), "max_new_tokens": 4}}
    cfg = llm_toy_config(llm)
    cfg["agents"][0]["operator_options"] = {"llm-draft": {"repair_retries": 0}}
    import cambrian.campaign.engine as engine

    result = Campaign.from_config(cfg, tmp_path / "run").run()
    assert result.best is None and "stall" in result.reason
    calls = Store(tmp_path / "run", create=False).llm_calls()
    assert len(calls) == engine.MAX_IDLE_STEPS and all(c["ok"] and c["completion_tokens"] >= 1 for c in calls)
    assert {c["model"] for c in calls} == {"tiny"}


@pytest.mark.gpu
def test_local_model_on_cuda_in_bf16(tmp_path):
    save_tiny_model(tmp_path / "tiny", TEMPLATE)
    llm = get_plugin_manager().get("llm", "transformers")(path=str(tmp_path / "tiny"), max_new_tokens=4,
                                                          device="cuda", dtype="bfloat16")
    r = llm.complete([{"role": "user", "content": "hi"}])
    assert 1 <= r.completion_tokens <= 4 and r.prompt_tokens == len("<user>hi\n<assistant>")
