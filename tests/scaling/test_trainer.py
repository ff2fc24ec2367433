import math

import numpy as np
import pytest
import torch

from cambrian.scaling.trainer import TrainConfig, lr_at, make_optimizer, param_groups, train
from tests.scaling.tiny_models import TinyGPT

VOCAB, T, B = 32, 16, 8


def batches(i):
    rng = np.random.default_rng([0, i])
    x = rng.integers(0, VOCAB, size=(B, T + 1))
    x[:, 1::2] = x[:, 0:-1:2]  # every other token repeats the previous one: learnable
    return x[:, :-1], x[:, 1:]


def model(seed=0):
    torch.manual_seed(seed)
    return TinyGPT(VOCAB, d=16, n_layer=1, n_head=2, max_len=T)


def test_schedules():
    c = TrainConfig(lr=1.0, warmup_steps=10, min_lr_frac=0.1, max_steps=100)
    assert lr_at(c, 0, 0.0) == pytest.approx(0.1) and lr_at(c, 9, 0.09) == pytest.approx(1.0)
    assert lr_at(c, 50, 0.5) == pytest.approx(0.55) and lr_at(c, 99, 1.0) == pytest.approx(0.1)
    w = TrainConfig(lr=1.0, warmup_steps=10, min_lr_frac=0.0, schedule="wsd", decay_frac=0.2, max_steps=100)
    assert lr_at(w, 50, 0.5) == 1.0 and lr_at(w, 90, 0.9) == pytest.approx(0.5) and lr_at(w, 100, 1.0) == pytest.approx(0.0, abs=1e-12)


def test_cpu_optimizer_is_the_fused_adamw_and_updates_as_torch_default_does():
    config = TrainConfig(lr=1e-2, weight_decay=0.1)
    fused_model, default_model = model(), model()
    fused = make_optimizer(fused_model, config)
    assert fused.defaults["fused"] is True  # one pass over all tensors, not torch's per-tensor CPU loop
    default = torch.optim.AdamW(param_groups(default_model, config), lr=1e-2, betas=config.betas)
    for i in range(3):
        x, y = (torch.from_numpy(a) for a in batches(i))
        for m, opt in ((fused_model, fused), (default_model, default)):
            torch.nn.functional.cross_entropy(m(x).reshape(-1, VOCAB), y.reshape(-1)).backward()
            opt.step()
            opt.zero_grad()
    moved = max(float((a - b).detach().abs().max()) for a, b in zip(fused_model.parameters(), model().parameters()))
    assert moved > 1e-3  # the steps changed the weights ...
    for a, b in zip(fused_model.parameters(), default_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)  # ... by the same update, to rounding


def test_training_learns_and_accounts_flops_and_tokens():
    m = model()
    r = train(m, batches, TrainConfig(lr=1e-2, max_steps=60, warmup_steps=5, grad_accum=2, threads=1,
                                      log_every=10), flops_per_token=1000.0)
    assert r.status == "completed" and r.stop_reason == "max_steps" and r.steps == 60
    assert r.tokens == 60 * 2 * B * T
    assert r.flops == 3 * 1000.0 * r.tokens  # training = 3 x forward
    assert r.history[-1][1] < r.history[0][1] - 0.5


def test_token_and_time_budgets_stop_the_run():
    r = train(model(), batches, TrainConfig(max_tokens=10 * B * T + 1, threads=1))
    assert r.steps == 11 and r.stop_reason == "max_tokens"
    r = train(model(), batches, TrainConfig(max_seconds=0.2, threads=1))
    assert r.stop_reason == "max_seconds" and r.steps >= 1


class Crash(Exception):
    pass


def test_resumed_run_equals_uninterrupted_run(tmp_path):
    cfg = TrainConfig(lr=1e-2, max_steps=12, warmup_steps=3, threads=1, log_every=1,
                      checkpoint_path=str(tmp_path / "ckpt.pt"), checkpoint_every=6)
    straight = model()
    train(straight, batches, TrainConfig(**{**cfg.__dict__, "checkpoint_path": None}))

    def crashing(i):  # the process dies while fetching step 7's batch, after the step-6 checkpoint
        if i == 7:
            raise Crash
        return batches(i)

    with pytest.raises(Crash):
        train(model(), crashing, cfg)
    resumed = model(seed=99)  # a different init: everything must come from the checkpoint
    r = train(resumed, batches, cfg)
    assert r.steps == 12
    for (n, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), n


def test_nan_loss_stops_with_a_status():
    class Broken(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(VOCAB))

        def forward(self, idx):
            return (self.w * math.nan).expand(*idx.shape, VOCAB)

    r = train(Broken(), batches, TrainConfig(max_steps=50, threads=1))
    assert r.status == "nan" and r.steps == 0 and "loss is nan" in r.stop_reason


def test_divergence_stops_the_run():
    def shifting(i):  # easy constant targets, then noise: the loss jumps and the run is stopped
        x, y = batches(i)
        return (x, np.zeros_like(y)) if i < 40 else (x, np.random.default_rng(i).integers(0, VOCAB, y.shape))

    r = train(model(), shifting, TrainConfig(lr=1e-2, max_steps=200, warmup_steps=5, threads=1))
    assert r.status == "diverged" and 40 < r.steps < 60 and "smoothed loss" in r.stop_reason
