"""The builder: spec -> causal language model.

    logits = head(norm_f(layers(embed(idx))))     each layer: x = x + mixer(norm(x))

On CPU with RMSNorm and the fused kernels built, each layer's residual add and the
next norm (the next layer's, or norm_f) run as one fused op (same values).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn

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

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.embed(idx)  # (B, T, d)
        norms = [layer.norm for layer in self.layers] + [self.norm_f]
        if all(type(n) is RMSNorm for n in norms) and fused.usable(x, self.norm_f.weight):
            # CPU: h = x + mixer(n) and the next norm of h in one pass each (fwd and bwd)
            n = norms[0](x)
            for layer, norm in zip(self.layers, norms[1:]):
                x, n = fused.add_rms_norm(x, layer.mixer(n), norm.weight, norm.eps)
            return self.lm_head(n)
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(self.norm_f(x))  # (B, T, V)

    def aux_loss(self) -> torch.Tensor:
        """Sum of the MoE load-balancing losses of the last forward (0 without MoE)."""
        losses = [m.aux_loss for m in self.modules() if hasattr(m, "aux_loss") and m is not self]
        return sum(losses, torch.zeros(())) if losses else torch.zeros(())

    def init_weights(self) -> None:
        """Normal(0, init_std) weights, zero biases, residual outputs scaled by
        1/sqrt(2 * n_layers) (GPT-2), then each mixer's own special init."""
        std = self.spec.init_std
        res_std = std / math.sqrt(2 * max(1, self.spec.n_layers))
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, std=res_std if getattr(m, "is_residual_out", False) else std)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, nn.Embedding):
                    nn.init.normal_(m.weight, std=std)
                for p in m.parameters(recurse=False):
                    if not isinstance(m, (nn.Linear, nn.Embedding)) and p.dim() == 3 \
                            and not isinstance(m, nn.Conv1d):  # stacked expert weights
                        nn.init.normal_(p, std=res_std if getattr(p, "is_residual_out", False) else std)
            for m in self.modules():
                if m is not self and hasattr(m, "reset_special"):
                    m.reset_special(std, res_std)


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
