"""A small top-k mixture of SwiGLU experts (no capacity limit, no token dropping)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class MoE(nn.Module):
    def __init__(self, d_model: int, n_experts: int, top_k: int, hidden: int):
        super().__init__()
        self.n_experts, self.top_k = n_experts, top_k
        self.router = nn.Linear(d_model, n_experts, bias=False)
        # experts as stacked weights: (E, d, h), (E, d, h), (E, h, d)
        self.w_gate = nn.Parameter(torch.empty(n_experts, d_model, hidden))
        self.w_up = nn.Parameter(torch.empty(n_experts, d_model, hidden))
        self.w_down = nn.Parameter(torch.empty(n_experts, hidden, d_model))
        self.w_down.is_residual_out = True
        for w in (self.w_gate, self.w_up, self.w_down):
            nn.init.normal_(w, std=0.02)
        self.aux_loss = torch.zeros(())  # load-balancing loss of the last forward (Switch style)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        flat = x.reshape(-1, d)  # (N, d)
        probs = F.softmax(self.router(flat).float(), dim=-1)  # (N, E)
        weight, expert = probs.topk(self.top_k, dim=-1)  # (N, k)
        weight = (weight / weight.sum(-1, keepdim=True)).to(x.dtype)
        out = torch.zeros_like(flat)
        for e in range(self.n_experts):
            rows, slot = (expert == e).nonzero(as_tuple=True)
            if rows.numel() == 0:
                continue
            h = flat[rows]
            y = (F.silu(h @ self.w_gate[e]) * (h @ self.w_up[e])) @ self.w_down[e]
            out.index_add_(0, rows, y * weight[rows, slot, None])
        load = F.one_hot(expert, self.n_experts).float().sum(1).mean(0)  # tokens per expert
        self.aux_loss = self.n_experts * (load / self.top_k * probs.mean(0)).sum()
        return out.view(b, t, d)
