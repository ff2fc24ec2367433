"""A small Mamba-style mixer (Mamba-2 / SSD form): gated, short causal conv, selective decay.

Per head, the state decays by a data-dependent scalar a_t = exp(-dt_t * A) and
is driven by B_t x_t; the output reads it with C_t. At CPU-sized T the scan
is computed in its equivalent quadratic (attention-like) form:
y_t = sum_{s<=t} (C_t . B_s) * exp(sum_{s<r<=t} log a_r) * dt_s x_s.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Mixer(nn.Module):
    def __init__(self, d_model: int, n_heads: int = 4, d_state: int = 16, expand: int = 2,
                 d_conv: int = 4, **kw):
        super().__init__()
        d_inner = expand * d_model
        assert d_inner % n_heads == 0
        self.n_heads, self.d_inner, self.d_state = n_heads, d_inner, d_state
        self.in_proj = nn.Linear(d_model, 2 * d_inner + 2 * d_state + n_heads, bias=False)
        self.conv = nn.Conv1d(d_inner, d_inner, d_conv, groups=d_inner, padding=d_conv - 1)
        self.dt_bias = nn.Parameter(torch.zeros(n_heads))
        self.A_log = nn.Parameter(torch.log(torch.linspace(1.0, 8.0, n_heads)))
        self.D = nn.Parameter(torch.ones(n_heads))
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        Bsz, T, _ = x.shape
        H, E, N = self.n_heads, self.d_inner, self.d_state
        u, gate, Bm, Cm, dt = self.in_proj(x).split([E, E, N, N, H], dim=-1)
        u = F.silu(self.conv(u.transpose(1, 2))[..., :T].transpose(1, 2))  # causal conv, (B, T, E)
        dt = F.softplus(dt + self.dt_bias)  # (B, T, H)
        log_a = -dt * torch.exp(self.A_log)  # (B, T, H), <= 0
        cum = torch.cumsum(log_a, dim=1).transpose(1, 2)  # (B, H, T)
        seg = cum[..., :, None] - cum[..., None, :]  # (B, H, T, T): sum of log a over (s, t]
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        decay = torch.exp(seg.masked_fill(~causal, float("-inf")))  # 0 above the diagonal
        scores = (Cm @ Bm.transpose(1, 2)).unsqueeze(1) * decay  # (B, H, T, T)
        xh = (u.view(Bsz, T, H, E // H) * dt.unsqueeze(-1)).transpose(1, 2)  # (B, H, T, hd)
        y = scores @ xh + u.view(Bsz, T, H, E // H).transpose(1, 2) * self.D.view(1, H, 1, 1)
        y = y.transpose(1, 2).reshape(Bsz, T, E)
        return self.out_proj(y * F.silu(gate))
