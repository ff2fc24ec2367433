"""The builder: spec -> causal language model.

    logits = head(norm_f(layers(embed(idx))))     each layer: x = x + mixer(norm(x))

``model(idx, targets=y)`` returns the mean cross-entropy instead of the logits; on CUDA with
liger-kernel installed the head and the loss run fused, chunk by chunk, without ever storing
the (B * T, V) logits (kernels.py).

On CPU with RMSNorm and the fused kernels built, each layer's residual add and the
next norm (the next layer's, or norm_f) run as one fused op (same values).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from cambrian.architectures import kernels
from cambrian.architectures.modules import fused
from cambrian.architectures.modules.common import RMSNorm, make_norm
from cambrian.architectures.registry import get_primitive
from cambrian.architectures.spec import ArchSpec


class Block(nn.Module):
    """A pre-norm residual layer around one primitive."""

    def __init__(self, spec: ArchSpec, index: int):
        super().__init__()
        layer = spec.layers[index]
        self.primitive = layer.primitive
        self.norm = make_norm(spec.norm, spec.d_model, spec.norm_eps)
        self.mixer = get_primitive(layer.primitive).build(layer.options, spec, index)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mixer(self.norm(x))


class CambrianLM(nn.Module):
    def __init__(self, spec: ArchSpec):
        super().__init__()
        self.spec = spec
        self.embed = nn.Embedding(spec.vocab_size, spec.d_model)
        self.layers = nn.ModuleList(Block(spec, i) for i in range(spec.n_layers))
        self.norm_f = make_norm(spec.norm, spec.d_model, spec.norm_eps)
        self.lm_head = nn.Linear(spec.d_model, spec.vocab_size, bias=False)
        if spec.tie_embeddings:
            self.lm_head.weight = self.embed.weight

    computes_loss = True  # forward(idx, targets) returns the loss (the trainer asks for it)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                ignore_index: int = -100) -> torch.Tensor:
        h = self.hidden(idx)  # (B, T, d), after norm_f
        if targets is None:
            return self.lm_head(h)  # (B, T, V)
        h, targets = h.reshape(-1, h.size(-1)), targets.reshape(-1)

        def unfused() -> torch.Tensor:
            logits = self.lm_head(h)
            return F.cross_entropy(logits.float(), targets, ignore_index=ignore_index)

        return kernels.dispatch("linear_cross_entropy", h, {"liger": lambda: kernels.liger_linear_cross_entropy(
            h, self.lm_head.weight, targets, ignore_index)}, unfused)

    def hidden(self, idx: torch.Tensor) -> torch.Tensor:
        """The last hidden state, normalised: what the head maps to logits. (B, T) -> (B, T, d)."""
        x = self.embed(idx)  # (B, T, d)
        norms = [layer.norm for layer in self.layers] + [self.norm_f]
        if all(type(n) is RMSNorm for n in norms) and fused.usable(x, self.norm_f.weight):
            # CPU: h = x + mixer(n) and the next norm of h in one pass each (fwd and bwd)
            kernels.note("cpp_add_rms_norm")
            n = norms[0](x)
            for layer, norm in zip(self.layers, norms[1:]):
                x, n = fused.add_rms_norm(x, layer.mixer(n), norm.weight, norm.eps)
            return n
        for layer in self.layers:
            x = layer(x)
        return self.norm_f(x)

    def aux_loss(self) -> torch.Tensor:
        """Sum of the MoE load-balancing losses of the last forward (0 without MoE)."""
        losses = [m.aux_loss for m in self.modules() if hasattr(m, "aux_loss") and m is not self]
        return sum(losses, torch.zeros(())) if losses else torch.zeros(())

    def init_weights(self) -> None:
        """Every module's own weights (:func:`init_module`), then each mixer's special init."""
        std, res_std = init_stds(self.spec)
        with torch.no_grad():
            for m in self.modules():
                init_module(m, std, res_std)
            for m in self.modules():
                if m is not self and hasattr(m, "reset_special"):
                    m.reset_special(std, res_std)


def init_stds(spec: ArchSpec) -> tuple[float, float]:
    """(std, residual-output std): init_std and init_std / sqrt(2 * n_layers) (GPT-2)."""
    return spec.init_std, spec.init_std / math.sqrt(2 * max(1, spec.n_layers))


def init_module(m: nn.Module, std: float, res_std: float) -> None:
    """The one weight-init rule, for one module's own parameters (not its children's):
    Normal(0, std) weights, ``res_std`` for residual outputs (``is_residual_out``), zero
    biases, stacked expert weights (3-d parameters outside conv) like linear weights,
    norms at one. Mixers' special inits (``reset_special``) come after, by the caller:
    :meth:`CambrianLM.init_weights` here, transformers' ``_init_weights`` in hf.py."""
    if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, std=res_std if getattr(m, "is_residual_out", False) else std)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Embedding):
        nn.init.normal_(m.weight, std=std)
    elif isinstance(m, (RMSNorm, nn.LayerNorm)):
        if m.weight is not None:
            nn.init.ones_(m.weight)
        if getattr(m, "bias", None) is not None:
            nn.init.zeros_(m.bias)
    elif not isinstance(m, nn.Conv1d):
        for p in m.parameters(recurse=False):
            if p.dim() == 3:  # stacked expert weights
                nn.init.normal_(p, std=res_std if getattr(p, "is_residual_out", False) else std)


def build_model(spec: ArchSpec | dict[str, Any], seed: int = 0) -> CambrianLM:
    """Build the model of ``spec`` with weights drawn deterministically from ``seed``.

    The global RNG state is left as it was.
    """
    if not isinstance(spec, ArchSpec):
        spec = ArchSpec.from_dict(spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CambrianLM(spec)
        model.init_weights()
    return model
