"""A small GPT trained on bytes for a fixed CPU-time budget (nanoGPT style). Edit freely.

Run: python train.py  (the harness sets TASK_SEED, TASK_TIME_BUDGET_S, TASK_SEQ_LEN).
The score is computed by the harness from out/model.ts on held-out data; what
this script prints is for your information only.
"""

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from prepare import SEED, SEQ_LEN, VOCAB_SIZE, Budget, evaluate_bpb, get_batch, load_split, save_model

# hyperparameters
N_LAYER, N_HEAD, D_MODEL = 2, 4, 64
BATCH_SIZE = 16
LR, MIN_LR_FRAC, WARMUP_STEPS, WEIGHT_DECAY = 3e-3, 0.1, 20, 0.1


class Block(nn.Module):
    def __init__(self, d: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        B, T, D = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(D, dim=2)
        q, k, v = (t.view(B, T, self.n_head, D // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, hd)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, D))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(VOCAB_SIZE, D_MODEL)
        self.wpe = nn.Embedding(SEQ_LEN, D_MODEL)
        self.blocks = nn.ModuleList(Block(D_MODEL, N_HEAD) for _ in range(N_LAYER))
        self.ln_f = nn.LayerNorm(D_MODEL)
        self.head = nn.Linear(D_MODEL, VOCAB_SIZE, bias=False)
        self.head.weight = self.wte.weight  # weight tying

    def forward(self, idx):  # idx (B, T) -> logits (B, T, V)
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


def main():
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    rng = np.random.default_rng(SEED)
    train, val = load_split("train"), load_split("val")
    model = GPT()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                             {"params": no_decay, "weight_decay": 0.0}], lr=LR, betas=(0.9, 0.95))
    budget, step = Budget(), 0
    while not budget.done():
        lr = LR * (step + 1) / WARMUP_STEPS if step < WARMUP_STEPS else \
            LR * (MIN_LR_FRAC + (1 - MIN_LR_FRAC) * 0.5 * (1 + math.cos(math.pi * budget.progress)))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = get_batch(train, BATCH_SIZE, rng)
        loss = F.cross_entropy(model(x).reshape(-1, VOCAB_SIZE), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 50 == 0:
            print(f"step {step} loss {loss.item():.4f} cpu {budget.used:.1f}s")
    save_model(model)
    print(f"steps: {step}")
    print(f"val_bpb: {evaluate_bpb(model, val):.4f}")


if __name__ == "__main__":
    main()
