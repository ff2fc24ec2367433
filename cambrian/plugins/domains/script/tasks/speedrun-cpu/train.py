"""A small GPT trained on bytes until it reaches the target val bits per byte, as fast as possible.

Run: python train.py  (the harness sets TASK_SEED, TASK_TARGET_BPB, TASK_TIME_BUDGET_S (a cap), TASK_SEQ_LEN).
The harness measures the run's CPU time itself and checks the saved model reaches the target on
held-out data.
The score is computed by the harness from out/model.ts on held-out data; what
this script prints is for your information only.
"""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from prepare import SEED, SEQ_LEN, TARGET_BPB, VOCAB_SIZE, Budget, evaluate_bpb, get_batch, load_split, save_model

# hyperparameters
N_LAYER, N_HEAD, D_MODEL = 2, 4, 64
BATCH_SIZE = 16
LR, WARMUP_STEPS, WEIGHT_DECAY = 3e-3, 20, 0.1
CHECK_EVERY, CHECK_TOKENS = 25, 8192  # how often, and on how much val data, to test for the target


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
        lr = LR * min(1.0, (step + 1) / WARMUP_STEPS)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = get_batch(train, BATCH_SIZE, rng)
        loss = F.cross_entropy(model(x).reshape(-1, VOCAB_SIZE), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % CHECK_EVERY == 0:
            bpb = evaluate_bpb(model, val, max_tokens=CHECK_TOKENS)
            print(f"step {step} loss {loss.item():.4f} val_bpb {bpb:.4f} cpu {budget.used:.1f}s")
            if bpb <= TARGET_BPB:
                break
    save_model(model)
    print(f"steps: {step}")
    print(f"val_bpb: {evaluate_bpb(model, val):.4f}")


if __name__ == "__main__":
    main()
