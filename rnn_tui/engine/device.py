"""Where torch computes: `--device cpu|cuda|auto` for `train`, `trace` and the explorer.

    device = resolve("auto")          # Device("cuda", ...) where CUDA is there, else Device("cpu")
    model.to(device.torch)            # the model, the batches, the optimizer state: all there

cpu is the default. cuda is refused in one line when torch sees no CUDA device (or was built
for the CPU only); auto takes cuda where it is there and says which it took (`note`).

On cuda the numbers are the CPU's within float32 rounding:
- float32 is IEEE float32: TF32, which torch lets cuDNN's RNN kernels use by default on recent
  GPUs (a 10-bit mantissa: errors near 1e-3), is switched off for those kernels and for matrix
  products when cuda is chosen;
- float64 stays float64 (slow on most GPUs, never downcast).

What stays on the CPU: files are read and saved from CPU copies (a run trained on a GPU opens on
a machine without one), the data generator draws batches there (the same seed gives the same
batches on either device), and a trace hands back numpy records as it always does.

Nothing here imports torch at module import time (the CLI's choices read `CHOICES`).
"""

from __future__ import annotations

from dataclasses import dataclass

from rnn_tui.engine.errors import EngineError

CHOICES = ("cpu", "cuda", "auto")
DEFAULT = "cpu"


class DeviceError(EngineError):
    """A device that cannot be used here; the message says what to give instead."""


@dataclass(frozen=True)
class Device:
    """The device torch computes on: its kind, what was asked for, and what the choice rests on."""

    kind: str = "cpu"  # "cpu" | "cuda"
    asked: str = DEFAULT  # the --device given: cpu, cuda or auto
    name: str = ""  # the GPU's name; "" on the CPU
    why: str = ""  # why auto took the CPU (why CUDA cannot be used here), else ""

    @property
    def torch(self):
        """The torch.device tensors go to."""
        return torch_device(self.kind)

    @property
    def accelerated(self) -> bool:
        """True off the CPU: the trace then runs its torch work there (`engine.trace`)."""
        return self.kind != "cpu"

    def describe(self) -> str:
        """"cuda (NVIDIA H200)" or "cpu"."""
        return f"{self.kind} ({self.name})" if self.name else self.kind

    def note(self) -> str | None:
        """One line on the choice where it is worth saying (auto, or a GPU); None for plain cpu."""
        if self.asked == "auto":
            because = f" ({self.why})" if self.why else ""
            return f"--device auto: computing on {self.describe()}{because}"
        if self.accelerated:
            return f"computing on {self.describe()}"
        return None


CPU = Device()


def torch_device(kind: str):
    """The one place a device kind becomes a torch.device (the tests map "cuda" to another)."""
    import torch

    return torch.device(kind)


def cuda_missing() -> str | None:
    """Why CUDA cannot be used here, in words, or None when it can."""
    import torch

    if torch.cuda.is_available():
        return None
    if getattr(torch.version, "cuda", None) is None:
        return f"this torch ({torch.__version__}) is built for the CPU only"
    return "torch sees no CUDA device (no GPU, no driver, or CUDA_VISIBLE_DEVICES hides it)"


def resolve(asked: str | None = None) -> Device:
    """The Device `--device ASKED` names (None: the default, cpu); DeviceError when cuda is
    asked for and absent, or the name is none of CHOICES."""
    asked = DEFAULT if asked is None else str(asked)
    if asked not in CHOICES:
        raise DeviceError(f"unknown device {asked!r}: choose {', '.join(CHOICES)}")
    if asked == "cpu":
        return CPU
    why = cuda_missing()
    if why is None:
        import torch

        ieee_float32()
        return Device("cuda", asked, torch.cuda.get_device_name())
    if asked == "cuda":
        raise DeviceError(f"--device cuda: CUDA is not available ({why}): use --device cpu, or --device auto "
                          "to take a GPU only where there is one")  # fmt: skip
    return Device("cpu", asked, "", why)


def as_device(device=None) -> Device:
    """A Device from what a caller hands over: a Device, a --device name, a torch.device (its
    type), or None (cpu)."""
    if device is None:
        return CPU
    if isinstance(device, Device):
        return device
    return resolve(str(getattr(device, "type", device)))


def of_module(module) -> Device:
    """The device a torch module's tensors are on (cpu for one without tensors)."""
    for p in module.parameters():
        return as_device(p.device)
    return CPU


def ieee_float32() -> None:
    """Full float32 on the GPU: no TF32 in cuDNN's RNN kernels or in matrix products (torch's
    newer per-backend setting where it has one; the older flags otherwise, never both, which
    torch refuses to mix)."""
    import torch

    cudnn_rnn = getattr(torch.backends.cudnn, "rnn", None)
    if cudnn_rnn is not None and hasattr(cudnn_rnn, "fp32_precision"):
        cudnn_rnn.fp32_precision = "ieee"
        torch.backends.cuda.matmul.fp32_precision = "ieee"
    else:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
