"""The device option, the run's runtime record, the accelerate path on one CPU process, and
per-block torch.compile (CPU side; the CUDA side is in tests/architectures/test_kernels_gpu.py)."""

import pytest
import torch

from cambrian.scaling.device import Runtime, check_device, resolve_device, visible_gpus, wants_cuda
from cambrian.scaling.trainer import TrainConfig, compile_blocks, train
from tests.scaling.test_trainer import VOCAB, Crash, batches, model


@pytest.mark.parametrize("value, want", [("auto", "auto"), ("CPU", "cpu"), ("cuda", "cuda"),
                                         (" cuda:1 ", "cuda:1"), (None, "auto")])
def test_device_option_is_normalised(value, want):
    assert check_device(value) == want


@pytest.mark.parametrize("value", ["gpu", "cuda:", "cuda:x", "mps", "cuda:0,1", ""])
def test_bad_device_names_the_option_and_the_choices(value):
    with pytest.raises(ValueError, match=r"device must be auto, cpu, cuda or cuda:N"):
        check_device(value)
    with pytest.raises(ValueError, match="device must be"):
        TrainConfig(max_steps=1, device=value)


def test_cuda_without_a_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(RuntimeError, match="CUDA is not available here"):
        resolve_device("cuda:0")


def test_wants_cuda_decides_without_initialising_cuda():
    assert wants_cuda("cuda:3") and wants_cuda("cuda") and not wants_cuda("cpu")
    assert wants_cuda("auto") == (visible_gpus() > 0)
    assert not torch.cuda.is_initialized()  # counting went through NVML (or found no CUDA build)


def test_runtime_flags_for_a_nodes_metrics():
    rt = Runtime(device="cuda:0", device_name="NVIDIA H200", dtype="bfloat16",
                 kernels=("liger_rms_norm", "sdpa_attention"), compiled=True)
    assert rt.metrics() == {"on_cuda": 1.0, "bf16": 1.0, "compiled": 1.0, "world_size": 1.0,
                            "kernel_liger_rms_norm": 1.0, "kernel_sdpa_attention": 1.0}
    assert Runtime(device="cpu", device_name="x", dtype="float32").metrics()["on_cuda"] == 0.0


def test_a_run_records_where_it_trained():
    r = train(model(), batches, TrainConfig(max_steps=2, warmup_steps=1, threads=1, device="cpu"))
    assert r.runtime["device"] == "cpu" and r.runtime["dtype"] == "float32"
    assert r.runtime["world_size"] == 1 and r.runtime["compiled"] is False
    r = train(model(), batches, TrainConfig(max_steps=2, warmup_steps=1, threads=1, device="cpu",
                                            precision="bf16"))
    assert r.runtime["dtype"] == "bfloat16"


def test_accelerate_path_on_one_cpu_process_learns_and_resumes(tmp_path):
    """The data-parallel path (accelerate="on") with one process: it trains, and a run killed after
    a checkpoint and resumed ends where an uninterrupted accelerate run ends."""
    cfg = TrainConfig(lr=1e-2, max_steps=12, warmup_steps=3, threads=1, log_every=1, device="cpu",
                      accelerate="on", checkpoint_path=str(tmp_path / "ckpt.pt"), checkpoint_every=6)
    straight = model()
    r = train(straight, batches, TrainConfig(**{**cfg.__dict__, "checkpoint_path": None}))
    assert r.status == "completed" and r.steps == 12
    assert r.history[-1][1] < r.history[0][1]  # it learned
    assert r.runtime["world_size"] == 1 and r.runtime["device"] == "cpu"

    def crashing(i):  # dies fetching step 7's batch, after the step-6 checkpoint
        if i == 7:
            raise Crash
        return batches(i)

    with pytest.raises(Crash):
        train(model(), crashing, cfg)
    assert (tmp_path / "ckpt.pt").is_file()
    resumed = model(seed=99)  # a different init: everything must come from the checkpoint
    r2 = train(resumed, batches, cfg)
    assert r2.steps == 12
    for (n, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        torch.testing.assert_close(a, b, msg=n)


def test_compile_option_wraps_each_block():
    from cambrian.architectures import build_model, reference_spec

    m = build_model(reference_spec("llama", d_model=32, n_layers=2, max_seq_len=16))
    assert all(block._compiled_call_impl is None for block in m.layers)
    assert compile_blocks(m)
    assert all(block._compiled_call_impl is not None for block in m.layers)
    assert m.embed._compiled_call_impl is None  # blocks only


def test_model_loss_equals_head_then_cross_entropy():
    """``model(x, targets=y)`` (the trainer's fusable path) gives the loss of the logits."""
    from cambrian.architectures import build_model, reference_spec
    from cambrian.scaling.trainer import lm_loss

    m = build_model(reference_spec("llama", d_model=32, n_layers=2, max_seq_len=16, vocab_size=VOCAB))
    x, y = (torch.from_numpy(a) for a in batches(0))
    y = y.clone()
    y[:, :3] = -100  # unscored positions
    torch.testing.assert_close(m(x, targets=y), lm_loss(m(x), y))

