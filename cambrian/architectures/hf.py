"""transformers export: a ``cambrian`` config / causal-LM pair for any valid spec.

    from cambrian.architectures.hf import to_hf
    hf_model = to_hf(model)                 # wraps a built CambrianLM, sharing its weights
    hf_model.save_pretrained("out/")        # weights + config + remote-code shims
    AutoModelForCausalLM.from_pretrained("out/", trust_remote_code=True).generate(...)

Importing this module registers the pair with ``AutoConfig`` / ``AutoModelForCausalLM``.
``save_pretrained`` also writes ``configuration_cambrian.py`` / ``modeling_cambrian.py``
and an ``auto_map``, so a fresh process (lm-eval's ``hf`` model, say) loads the
directory with ``trust_remote_code=True``; the shims import this module, so the
``cambrian`` package must be installed there. Generation recomputes the whole
prefix at every step (no KV cache) and ignores ``attention_mask``: batch only
prompts of equal length, unpadded.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import (AutoConfig, AutoModelForCausalLM, GenerationMixin, PretrainedConfig,
                          PreTrainedModel)
from transformers.modeling_outputs import CausalLMOutputWithPast

from cambrian.architectures.model import CambrianLM, init_module, init_stds
from cambrian.architectures.spec import ArchSpec

AUTO_MAP = {"AutoConfig": "configuration_cambrian.CambrianConfig",
            "AutoModelForCausalLM": "modeling_cambrian.CambrianForCausalLM"}
SHIMS = {
    "configuration_cambrian.py": '"""Loads a Cambrian architecture (needs the cambrian package)."""\n'
                                 "from cambrian.architectures.hf import CambrianConfig\n\n"
                                 '__all__ = ["CambrianConfig"]\n',
    "modeling_cambrian.py": '"""Loads a Cambrian architecture (needs the cambrian package)."""\n'
                            "from cambrian.architectures.hf import CambrianConfig, CambrianForCausalLM\n\n"
                            '__all__ = ["CambrianConfig", "CambrianForCausalLM"]\n',
}


class CambrianConfig(PretrainedConfig):
    """Holds the spec (``arch``, the canonical dict) plus what transformers looks for."""

    model_type = "cambrian"

    def __init__(self, arch: dict[str, Any] | None = None, **kwargs: Any):
        self.arch = ArchSpec.from_dict(arch).to_dict() if arch else {}
        if arch:
            kwargs.setdefault("tie_word_embeddings", self.arch["tie_embeddings"])
            self.vocab_size = self.arch["vocab_size"]
            self.hidden_size = self.arch["d_model"]
            self.num_hidden_layers = len(self.arch["layers"])
            self.max_position_embeddings = self.arch["max_seq_len"]
            kwargs.setdefault("auto_map", dict(AUTO_MAP))
        kwargs.setdefault("use_cache", False)
        super().__init__(**kwargs)

    @property
    def spec(self) -> ArchSpec:
        return ArchSpec.from_dict(self.arch)


class CambrianForCausalLM(PreTrainedModel, GenerationMixin):
    config_class = CambrianConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    _tied_weights_keys = {"model.lm_head.weight": "model.embed.weight"}
    _no_split_modules = ["Block"]

    def __init__(self, config: CambrianConfig):
        super().__init__(config)
        self.model = CambrianLM(config.spec)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        # CambrianLM's rule, one module at a time: transformers calls this only for modules
        # whose weights were not loaded, children before parents, so a mixer's special init
        # comes after its own layers', as in CambrianLM.init_weights.
        params = list(module.parameters(recurse=False))
        if params and all(getattr(p, "_is_hf_initialized", False) for p in params):
            return
        std, res_std = init_stds(self.config.spec)
        with torch.no_grad():
            init_module(module, std, res_std)
            if hasattr(module, "reset_special"):
                module.reset_special(std, res_std)

    def get_input_embeddings(self) -> nn.Module:
        return self.model.embed

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.model.embed = value

    def get_output_embeddings(self) -> nn.Module:
        return self.model.lm_head

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.model.lm_head = value

    def forward(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None,
                labels: torch.LongTensor | None = None, **kwargs: Any) -> CausalLMOutputWithPast:
        logits = self.model(input_ids)  # (B, T, V)
        loss = None
        if labels is not None:  # transformers' convention: labels are the inputs, shifted here
            loss = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(),
                                   ignore_index=-100)
        return CausalLMOutputWithPast(loss=loss, logits=logits)

    def prepare_inputs_for_generation(self, input_ids: torch.LongTensor, **kwargs: Any) -> dict:
        return {"input_ids": input_ids}  # no cache: the whole prefix every step

    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> None:
        super().save_pretrained(save_directory, *args, **kwargs)
        for name, text in SHIMS.items():
            with open(os.path.join(save_directory, name), "w") as fh:
                fh.write(text)


def to_hf(model: CambrianLM) -> CambrianForCausalLM:
    """Wrap a built model (weights shared, not copied) as a transformers model."""
    hf = CambrianForCausalLM(CambrianConfig(arch=model.spec.to_dict()))
    hf.model = model
    return hf.to(next(model.parameters()).dtype)


AutoConfig.register("cambrian", CambrianConfig, exist_ok=True)
AutoModelForCausalLM.register(CambrianConfig, CambrianForCausalLM, exist_ok=True)
