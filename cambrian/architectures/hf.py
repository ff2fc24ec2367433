"""transformers export: a ``cambrian`` config / causal-LM pair for any valid spec.

    from cambrian.architectures.hf import to_hf
    hf_model = to_hf(model)                 # wraps a built CambrianLM, sharing its weights
    hf_model.save_pretrained("out/")        # weights + config + remote-code shims
    AutoModelForCausalLM.from_pretrained("out/", trust_remote_code=True).generate(...)

Importing this module registers the pair with ``AutoConfig`` / ``AutoModelForCausalLM``.
``save_pretrained`` also writes ``configuration_cambrian.py`` / ``modeling_cambrian.py``
and an ``auto_map``, so a fresh process (lm-eval's ``hf`` model, say) loads the
directory with ``trust_remote_code=True``; the shims import this module, so the
``cambrian`` package must be installed there. A spec naming a third-party
primitive loads it through the plugin's entry point; ``cambrian_requires`` in the
config names each such plugin's distribution, so a machine without it gets one
line saying what to install. :func:`byte_tokenizer` is the tokenizer of the
byte-level data (one token per UTF-8 byte, ids 0-255; ``<|endoftext|>`` is id 0, EOS and pad),
saved as a ``tokenizer.json`` that ``AutoTokenizer`` loads without remote code.
Generation recomputes the whole
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
from cambrian.architectures.primitives.base import SpecError
from cambrian.architectures.registry import primitive_names
from cambrian.architectures.spec import ArchSpec

AUTO_MAP = {"AutoConfig": "configuration_cambrian.CambrianConfig",
            "AutoModelForCausalLM": "modeling_cambrian.CambrianForCausalLM"}
# The shims load cambrian's plugins first: a primitive from a pip-installed plugin then
# arrives through the plugin's entry point, as in a campaign.
_SHIM_HEAD = ('"""Loads a Cambrian architecture (needs the cambrian package)."""\n'
              "import cambrian.plugins  # noqa: F401  plugin primitives, through their entry points\n")
SHIMS = {
    "configuration_cambrian.py": _SHIM_HEAD + "from cambrian.architectures.hf import CambrianConfig\n\n"
                                 '__all__ = ["CambrianConfig"]\n',
    "modeling_cambrian.py": _SHIM_HEAD + "from cambrian.architectures.hf import CambrianConfig, "
                            "CambrianForCausalLM\n\n"
                            '__all__ = ["CambrianConfig", "CambrianForCausalLM"]\n',
}


# Id 0 (byte NUL, which text does not contain) is EOS and pad under this one name. Every id
# has exactly one name: with both "<0x00>" and EOS naming id 0, the id -> token map followed
# the tokenizers library's hash order and some processes added EOS as a new token 256.
EOS_TOKEN = "<|endoftext|>"


def byte_tokenizer() -> Any:
    """The byte-level data's tokenizer as a transformers fast tokenizer: token id = UTF-8 byte.

    A BPE model with no merges whose vocabulary is EOS (id 0) and the byte tokens ``<0x01>``
    ... ``<0xFF>``, and which falls back to bytes for every character: any text without NUL
    encodes to its UTF-8 bytes, exactly as :class:`cambrian.scaling.data.ByteTokenizer` does.
    """
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    vocab = {EOS_TOKEN: 0} | {f"<0x{b:02X}>": b for b in range(1, 256)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], byte_fallback=True, ignore_merges=True))
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS_TOKEN, pad_token=EOS_TOKEN,
                                   model_max_length=1 << 30)


def _spec(arch: dict[str, Any], requires: list[dict[str, str]]) -> ArchSpec:
    """Validate ``arch``; primitives not built in arrive through their plugins' entry points."""
    names = {layer["primitive"] if isinstance(layer, dict) else str(layer) for layer in arch.get("layers", [])}
    missing = sorted(names - set(primitive_names()))
    if missing:  # the shims import cambrian.plugins, whose plugin manager offers plugin primitives
        need = {r["primitive"]: r for r in requires}
        raise SpecError("this model needs primitive(s) that no installed plugin offers: " + ", ".join(
            f"{m} (pip install '{need[m]['distribution']}=={need[m]['version']}')" if m in need
            else m for m in missing))
    return ArchSpec.from_dict(arch)


class CambrianConfig(PretrainedConfig):
    """Holds the spec (``arch``, the canonical dict) plus what transformers looks for.

    ``cambrian_requires``: for each primitive that a plugin provides, the plugin's entry
    point and distribution (``{"primitive", "plugin", "distribution", "version"}``).
    """

    model_type = "cambrian"

    def __init__(self, arch: dict[str, Any] | None = None,
                 cambrian_requires: list[dict[str, str]] | None = None, **kwargs: Any):
        self.cambrian_requires = list(cambrian_requires or [])
        self.arch = _spec(arch, self.cambrian_requires).to_dict() if arch else {}
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
