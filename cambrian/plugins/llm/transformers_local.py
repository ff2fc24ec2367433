"""``transformers``: a local causal LM from a model directory (no network).

Options:
  path (required)        directory with config, weights and tokenizer (save_pretrained output)
  max_new_tokens (512), temperature (0.0 = greedy), top_p (1.0), seed (0)
  device ("cpu"), dtype (None = the checkpoint's)

Chat messages go through the tokenizer's chat template when it has one, else
a plain "role: content" transcript ending in "assistant:". Cost is 0; token
counts are the prompt and generated lengths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from cambrian import LLMBackend, LLMResponse, Options, hookimpl
from cambrian.plugins.llm.base import LLMError


class TransformersBackend(LLMBackend):
    name = "transformers"

    class Options(Options):
        path: str = Field(description="a local transformers model directory")
        max_new_tokens: int = Field(512, ge=1)
        temperature: float = Field(0.0, ge=0, description="0: greedy decoding")
        top_p: float = Field(1.0, gt=0, le=1)
        seed: int = 0
        device: str = "cpu"
        dtype: str | None = Field(None, description="a torch dtype name, e.g. bfloat16 (None: the model's)")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        o = self.options
        max_new_tokens, temperature, top_p, seed, device, dtype = (
            o.max_new_tokens, o.temperature, o.top_p, o.seed, o.device, o.dtype)
        self.path = Path(o.path).expanduser()
        if not self.path.is_dir():
            raise LLMError(f"llm 'transformers': model directory {self.path} not found")
        self.model = self.path.name
        self.max_new_tokens, self.temperature, self.top_p = max_new_tokens, temperature, top_p
        self.seed, self.device, self.dtype = seed, device, dtype
        self._lm: Any = None
        self._tok: Any = None

    def _load(self) -> None:
        if self._lm is not None:
            return
        # torch and transformers: heavy, loaded with the model, not with the plugin
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._tok = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        kw = {"dtype": getattr(torch, self.dtype)} if self.dtype else {}
        self._lm = AutoModelForCausalLM.from_pretrained(self.path, local_files_only=True, **kw)
        self._lm.to(self.device).eval()

    def prompt_text(self, messages: list[dict[str, str]]) -> str:
        if getattr(self._tok, "chat_template", None):
            return self._tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        lines = [f"{m['role']}: {m['content']}" for m in messages]
        return "\n".join(lines) + "\nassistant:"

    def complete(self, messages: list[dict[str, str]], **kwargs: Any) -> LLMResponse:
        import torch  # heavy: see _load

        self._load()
        enc = self._tok(self.prompt_text(messages), return_tensors="pt", add_special_tokens=False)
        ids = enc["input_ids"].to(self.device)  # (1, T)
        temperature = float(kwargs.get("temperature", self.temperature))  # operators may override
        sample = temperature > 0
        gen_kw: dict[str, Any] = {"max_new_tokens": int(kwargs.get("max_tokens", self.max_new_tokens)),
                                  "do_sample": sample}
        if sample:
            gen_kw.update(temperature=temperature, top_p=self.top_p)
        pad = self._tok.pad_token_id if self._tok.pad_token_id is not None else self._tok.eos_token_id
        torch.manual_seed(self.seed)
        with torch.no_grad():
            out = self._lm.generate(ids, attention_mask=torch.ones_like(ids), pad_token_id=pad, **gen_kw)
        new = out[0, ids.shape[1]:]  # (T_new,)
        text = self._tok.decode(new, skip_special_tokens=True)
        return LLMResponse(text=text, prompt_tokens=int(ids.shape[1]), completion_tokens=int(new.shape[0]),
                           cost_usd=0.0, model=self.model)


@hookimpl
def cambrian_llm_backends():
    return [TransformersBackend]
