"""Which device a run computes on and which precision its gradient attacks use: ``auto`` resolved against
the hardware present. Below ``config`` (a config's record stores the resolved precision) and ``models``
(the backends run on the device); it imports only ``errors`` (and torch, when installed, to ask)."""

from __future__ import annotations

from audit.errors import ModelError


def resolve_device(device: str) -> str:
    """Map ``auto|cpu|cuda`` to an available device name."""
    if device not in ("auto", "cpu", "cuda"):
        raise ModelError(f"--device must be auto, cpu or cuda, not {device!r}")
    if device == "cpu":
        return "cpu"
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:
        has_cuda = False
    if device == "cuda" and not has_cuda:
        raise ModelError("--device cuda was asked for but no CUDA device is available")
    return "cuda" if has_cuda else "cpu"


PRECISIONS = ("auto", "float32", "bfloat16")


def resolve_precision(precision: str, device: str) -> str:
    """Map the attack precision ``auto|float32|bfloat16`` to the one gradient attacks run in on ``device``.

    ``auto`` is bfloat16 where the hardware computes it natively (a CUDA device with bfloat16, or a CPU
    with AVX512-BF16 or AMX) and float32 elsewhere: emulated bfloat16 would be slower than float32."""
    if precision not in PRECISIONS:
        raise ModelError(f"--attack-precision must be auto, float32 or bfloat16, not {precision!r}")
    if precision != "auto":
        return precision
    import torch

    if device == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    native = [getattr(torch.cpu, name, lambda: False)
              for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    try:
        return "bfloat16" if any(f() for f in native) else "float32"
    except Exception:  # a private probe of the CPU's features changed: the safe choice
        return "float32"
