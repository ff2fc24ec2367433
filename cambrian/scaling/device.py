"""Where a model trains: the ``device`` option (``auto | cpu | cuda | cuda:N``) and what a run used.

``auto`` means CUDA when a GPU is visible, else the CPU. Two ways to ask, for two places:

- :func:`resolve_device` (in the process that trains): ``torch.cuda.is_available()``, which
  initialises the CUDA driver;
- :func:`wants_cuda` (in the campaign process, before a worker is forked or started): counts
  GPUs through NVML (``torch.cuda.device_count()`` does when NVML answers) and so leaves the
  driver uninitialised. A process that forks CUDA workers must never have initialised CUDA
  itself: the driver does not survive a fork (see docs/sandbox.md).

:class:`Runtime` is what a run records about where and how it trained (device, its name, the
autocast dtype, the fused kernels its forward and backward passes used, ``torch.compile``);
:meth:`Runtime.metrics` turns it into the numeric flags a node's metrics can carry.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict

RUNTIME_FILE = "runtime.json"
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device(value: Any) -> str:
    """The device option, validated: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
    text = str(value).strip().lower() if value is not None else "auto"
    if not _DEVICE.match(text):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N (N a GPU index), got {value!r}")
    return text


DeviceName = Annotated[str, AfterValidator(check_device)]  # a typed option for pydantic models


def resolve_device(name: str = "auto"):
    """The torch device to train on; ``cuda`` without a usable GPU is an error that says so."""
    import torch  # heavy: device options are checked at config load, without torch (here and below)

    name = check_device(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} asked for, but CUDA is not available here "
                           "(torch built without CUDA, no GPU, or no driver); use device: auto or cpu")
    device = torch.device(name)
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise RuntimeError(f"device {name!r} asked for, but only {torch.cuda.device_count()} GPU(s) are visible")
    return device


def visible_gpus() -> int:
    """GPUs visible to this process, counted without initialising CUDA where NVML answers."""
    try:
        import torch  # heavy: see resolve_device

        return int(torch.cuda.device_count())
    except Exception:  # noqa: BLE001 - no torch CUDA build, no driver: no GPU
        return 0


def wants_cuda(name: Any) -> bool:
    """Will a worker given this device option train on CUDA? Safe to call before forking workers."""
    name = check_device(name)
    return name.startswith("cuda") or (name == "auto" and visible_gpus() > 0)


class Runtime(BaseModel):
    """Where and how a run trained."""

    model_config = ConfigDict(frozen=True)

    device: str  # "cpu", "cuda:0", ...
    device_name: str  # the GPU's name, or the CPU's
    dtype: str  # the autocast dtype of forward passes: "bfloat16" or "float32"
    kernels: tuple[str, ...] = ()  # fused kernels used (see cambrian.architectures.kernels)
    compiled: bool = False  # blocks run under torch.compile
    world_size: int = 1  # data-parallel processes (accelerate)

    def write(self, folder) -> None:
        """``runtime.json`` in ``folder``: the names behind the numeric flags."""
        from pathlib import Path

        (Path(folder) / RUNTIME_FILE).write_text(self.model_dump_json(indent=1))

    def metrics(self) -> dict[str, float]:
        """Numeric flags for a node's metrics: on_cuda, bf16, compiled, world_size, kernel_<name>."""
        out = {"on_cuda": float(self.device.startswith("cuda")), "bf16": float(self.dtype == "bfloat16"),
               "compiled": float(self.compiled), "world_size": float(self.world_size)}
        out.update({f"kernel_{k}": 1.0 for k in self.kernels})
        return out


def device_name(device) -> str:
    import platform

    import torch  # heavy: see resolve_device

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"


def runtime(device, bf16: bool, kernels: set[str] | tuple[str, ...], compiled: bool = False,
            world_size: int = 1) -> Runtime:
    import torch  # heavy: see resolve_device

    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return Runtime(device=str(device), device_name=device_name(device), dtype="bfloat16" if bf16 else "float32",
                   kernels=tuple(sorted(kernels)), compiled=compiled, world_size=world_size)
