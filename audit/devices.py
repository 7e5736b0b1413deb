"""Which device a run computes on, through which backend, and which precision its gradient attacks use:
``auto`` resolved against the hardware present. Below ``config`` (a config's record stores the resolved
precision) and ``models`` (the backends run on the device); it imports only ``errors`` (and torch and
onnxruntime, when installed, to ask what they can use)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from audit.errors import ModelError

DEVICES = ("auto", "cpu", "cuda")
CUDA_EP, CPU_EP = "CUDAExecutionProvider", "CPUExecutionProvider"
NO_CUDA = ("--device cuda: no CUDA device is usable here (onnxruntime has no CUDAExecutionProvider - install "
           "faceaudit[gpu] for onnxruntime-gpu - and torch sees no CUDA device); use --device cpu or auto")


def ort_providers() -> list[str]:
    """onnxruntime's execution providers in this installation (empty when onnxruntime cannot be imported)."""
    try:
        import onnxruntime as ort

        return list(ort.get_available_providers())
    except Exception:
        return []


def torch_cuda() -> bool:
    """Whether torch sees a CUDA device."""
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


@dataclass(frozen=True)
class Compute:
    """Where a run computes, as stored with it (the run's ``environment['compute']``)."""

    device: str
    """Where the embedding pass (every metric's embeddings) runs: ``cpu`` or ``cuda``."""
    backend: str
    """What runs the embedding pass: ``ort`` (onnxruntime) or ``torch`` (the graph converted by onnx2torch)."""
    provider: str | None
    """onnxruntime's execution provider for the embedding pass; None when the torch backend runs it."""
    torch_device: str
    """Where the torch backend runs (the parity check and the gradient attacks)."""

    def to_dict(self) -> dict:
        return asdict(self)

    def stored(self, precision: str, threads: int) -> dict:
        """What a run computes on, as its environment stores it and ``--resume`` compares it: the device and backend,
        the gradient attacks' precision and torch's intra-op threads (each moves the attacks' numbers a little)."""
        return {**self.to_dict(), "attack_precision": precision, "attack_threads": threads}


def stored_compute(run: dict) -> dict:
    """What a stored run computed on (its ``environment['compute']``, :meth:`Compute.stored`); a run stored before the
    backend was recorded embedded through onnxruntime on the device it names; {} when it names none."""
    env = run.get("environment") or {}
    return env.get("compute") or ({"device": env["device"], "backend": "ort"} if env.get("device") else {})


def describe(compute: dict) -> str:
    """A stored compute record (:meth:`Compute.to_dict`, plus ``attack_precision`` when known; older runs hold only
    ``device`` and ``backend``) in words, e.g. ``cuda (embeddings through torch; gradient attacks in float32 on
    cuda)``; with bfloat16 it says which attacks use it (the white-box inversion always runs in float32)."""
    how = "onnxruntime" + (f" {compute['provider']}" if compute.get("provider") else "") \
        if compute.get("backend") == "ort" else "torch"
    attacks = ""
    if compute.get("torch_device") and compute.get("attack_precision") == "bfloat16":
        # the white-box inversion stays float32 whatever the setting (audit/probes/inversion.py: white_box)
        attacks = (f"; gradient attacks on {compute['torch_device']}: cloak attacks and inversion decoder training in "
                   "bfloat16 autocast, white-box inversion in float32")
    elif compute.get("torch_device"):
        attacks = f"; gradient attacks in float32 on {compute['torch_device']}"
    if compute.get("attack_threads"):
        attacks += f"; {compute['attack_threads']} torch thread{'s' if compute['attack_threads'] != 1 else ''}"
    return f"{compute['device']} (embeddings through {how}{attacks})"


def select_compute(device: str) -> Compute:
    """What ``--device auto|cpu|cuda`` uses here.

    ``cuda`` (and ``auto`` when a GPU is usable) runs the embedding pass through onnxruntime's CUDA provider when
    onnxruntime has it (``onnxruntime-gpu``), else through the torch backend on CUDA; ``cpu`` (and ``auto`` without
    a GPU) through onnxruntime's CPU provider. The torch backend runs on CUDA whenever torch sees a device.
    ``cuda`` with neither is a one-line :class:`ModelError`."""
    if device not in DEVICES:
        raise ModelError(f"--device must be auto, cpu or cuda, not {device!r}")
    ort_cuda = device != "cpu" and CUDA_EP in ort_providers()
    t_cuda = device != "cpu" and torch_cuda()
    if device == "cuda" and not (ort_cuda or t_cuda):
        raise ModelError(NO_CUDA)
    tdev = "cuda" if t_cuda else "cpu"
    if ort_cuda:
        return Compute("cuda", "ort", CUDA_EP, tdev)
    if t_cuda:
        return Compute("cuda", "torch", None, "cuda")
    return Compute("cpu", "ort", CPU_EP, "cpu")


def without_ort_cuda(device: str, compute: Compute) -> Compute:
    """The choice when onnxruntime lists its CUDA provider but a session could not start it (its CUDA libraries
    missing): the torch backend on CUDA where torch has it, else the CPU for ``auto``, else a one-line error."""
    if compute.torch_device == "cuda":
        return Compute("cuda", "torch", None, "cuda")
    if device == "auto":
        return Compute("cpu", "ort", CPU_EP, "cpu")
    raise ModelError("--device cuda: onnxruntime lists its CUDA provider but could not start it (CUDA or cuDNN "
                     "libraries missing?) and torch sees no CUDA device; use --device cpu or auto")


def resolve_device(device: str) -> str:
    """Map ``auto|cpu|cuda`` to the device the torch backend runs on (``cuda`` refused when no GPU is usable)."""
    return select_compute(device).torch_device


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


def available_memory(root: str = "/") -> int | None:
    """Bytes of memory this process can still take: Linux's ``MemAvailable``, lowered to what a cgroup's limit leaves
    (a container's); None where neither can be read (then nothing is refused for memory). ``root``: where ``/proc``
    and ``/sys`` are read from."""
    from pathlib import Path

    def read(path: str) -> str | None:
        try:
            return (Path(root) / path.lstrip("/")).read_text()
        except OSError:
            return None

    avail = None
    meminfo = read("/proc/meminfo") or ""
    for line in meminfo.splitlines():
        if line.startswith("MemAvailable:"):
            avail = int(line.split()[1]) * 1024
    for folder, limit_file, usage_file, cache_key in (
            ("/sys/fs/cgroup", "memory.max", "memory.current", "inactive_file"),
            ("/sys/fs/cgroup/memory", "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")):
        limit, usage = read(f"{folder}/{limit_file}"), read(f"{folder}/{usage_file}")
        if limit and usage and limit.strip().isdigit() and usage.strip().isdigit() and int(limit) < 2**60:
            # (cgroup v1 writes a huge number for no limit.) The usage counts page cache the kernel gives back when
            # asked: the working set is the usage less the inactive file pages, as container runtimes count it.
            stat = dict(line.split()[:2] for line in (read(f"{folder}/memory.stat") or "").splitlines()
                        if len(line.split()) >= 2)
            cache = int(stat.get(cache_key, "0")) if stat.get(cache_key, "0").isdigit() else 0
            left = int(limit) - max(int(usage) - cache, 0)
            avail = left if avail is None else min(avail, left)
    return avail
