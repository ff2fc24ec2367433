"""Channel mixers: a plain MLP and SwiGLU."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from cambrian.architectures import kernels
from cambrian.architectures.modules import fused

_ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu, "silu": F.silu,
                "relu2": lambda x: F.relu(x).square()}


class MLP(nn.Module):
    def __init__(self, d_model: int, hidden: int, activation: str = "gelu"):
        super().__init__()
        self.up = nn.Linear(d_model, hidden, bias=False)
        self.down = nn.Linear(hidden, d_model, bias=False)
        self.down.is_residual_out = True
        self.act = _ACTIVATIONS[activation]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.act(self.up(x)))


class SwiGLU(nn.Module):
    def __init__(self, d_model: int, hidden: int):
        super().__init__()
        # gate and up projections fused into one matmul: rows [:hidden] gate, [hidden:] up
        self.gate_up = nn.Linear(d_model, 2 * hidden, bias=False)
        self.down = nn.Linear(hidden, d_model, bias=False)
        self.down.is_residual_out = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate_up = self.gate_up(x)  # (B, T, 2 * hidden)
        if fused.usable(gate_up):  # CPU: silu(gate) * up and its backward in one C++ pass
            return self.down(fused.swiglu(gate_up))
        if gate_up.is_cuda:  # liger-kernel's fused SiLU-mul where installed (kernels.py)
            return self.down(kernels.dispatch("swiglu", gate_up, {
                "liger": lambda: kernels.liger_swiglu(gate_up)}, lambda: _swiglu(gate_up)))
        return self.down(_swiglu(gate_up))


def _swiglu(gate_up: torch.Tensor) -> torch.Tensor:
    gate, up = gate_up.chunk(2, dim=-1)  # (B, T, hidden) each
    return F.silu(gate) * up
