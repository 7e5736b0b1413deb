"""``models.load()``: a model file, its profile and lazily built backends."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from audit.devices import CUDA_EP, Compute, select_compute, without_ort_cuda
from audit.errors import ModelError
from audit.models.backends import PRECISIONS, Backend, OrtBackend, TorchBackend
from audit.models.onnx_file import ModelInfo, load_model_file
from audit.models.profile import Profile, resolve_profile


@dataclass
class LoadedModel:
    """A validated model with its profile; backends are created on first use."""

    info: ModelInfo
    profile: Profile
    profile_from_file: bool
    device: str = "auto"
    batch_size: int = 64
    precision: str = "float32"
    """What gradient attacks through the torch backend compute in (float32 or bfloat16; resolved, never auto)."""
    _ort: OrtBackend | None = field(default=None, repr=False)
    _torch: TorchBackend | None = field(default=None, repr=False)
    _compute: Compute | None = field(default=None, repr=False)
    torch_error: str | None = None
    """Why the torch backend is unavailable, once its conversion was tried and failed."""

    def __post_init__(self):
        if self.precision not in PRECISIONS[1:]:  # 'auto' is resolved by the run (config.precision())
            raise ModelError(f"{self.info.path.name}: precision must be float32 or bfloat16, not {self.precision!r}")

    @property
    def name(self) -> str:
        return self.profile.name

    @property
    def compute(self) -> Compute:
        """Where this model computes for ``device`` (:func:`audit.devices.select_compute`): onnxruntime's CUDA
        provider is tried here, so a provider that is listed but cannot start gives way to the torch backend on
        CUDA (or, for ``auto``, the CPU) before anything is embedded."""
        if self._compute is None:
            chosen = select_compute(self.device)
            if chosen.provider == CUDA_EP:
                self._ort = OrtBackend(self.info, self.profile, "cuda", self.batch_size)
                if self._ort.device != "cuda":
                    chosen = without_ort_cuda(self.device, chosen)
            self._compute = chosen
        return self._compute

    @property
    def ort(self) -> OrtBackend:
        """onnxruntime, on CUDA when :attr:`compute` chose its CUDA provider, else on the CPU (the reference the
        torch backend's parity is checked against)."""
        if self._ort is None:
            self.compute
        if self._ort is None:
            self._ort = OrtBackend(self.info, self.profile, "cpu", self.batch_size)
        return self._ort

    @property
    def infer(self) -> Backend:
        """The backend every metric's inference goes through (the embedding pass, judges of reconstructions and
        cloaked images): onnxruntime, or the torch backend when :attr:`compute` chose it (CUDA without
        onnxruntime's CUDA provider)."""
        if self.compute.backend == "ort":
            return self.ort
        b = self.torch()
        if b is None:
            raise ModelError(f"{self.info.path.name}: --device {self.device}: onnxruntime has no CUDA provider here "
                             f"and the torch backend cannot run the model ({self.torch_error}); install "
                             "onnxruntime-gpu (faceaudit[gpu]) or use --device cpu")
        return b

    def torch(self) -> TorchBackend | None:
        """The torch backend, or None (with :attr:`torch_error` set) if conversion failed."""
        if self._torch is None and self.torch_error is None:
            try:
                self._torch = TorchBackend(self.info, self.profile, self.device, self.batch_size, self.precision)
            except ModelError as exc:
                self.torch_error = str(exc)
        return self._torch

    def drop_torch(self, reason: str) -> None:
        """Nothing uses the torch backend from now on (:attr:`torch_error` says why)."""
        self._torch, self.torch_error = None, reason

    def withdraw_torch(self, checked: dict) -> None:
        """After a parity check (:func:`audit.run.results.parity`) that the torch backend failed on the run's faces:
        nothing uses it, the gradient attacks included, which then record that they were not tried (an attack run
        through a conversion that disagrees with the model, e.g. in colour order, reached a white-box inversion rate of
        0.19 where the model's own gave 1.00, and the inversion rules pooled it as the strongest attack; a review of
        the probes). A check that could not run (``available`` false: no conversion, or its pass failed on the faces)
        withdraws it too, with its ``reason``."""
        if checked.get("available") and not checked.get("passed"):
            self.drop_torch(f"the torch backend disagrees with onnxruntime on this run's faces (max abs diff "
                            f"{checked['max_abs_diff']:.3g}, min cosine {checked['min_cosine']:.6f}), so no attack "
                            "runs through it")
        elif checked and not checked.get("available"):  # its conversion, or its pass, failed
            self.drop_torch(checked.get("reason") or "its torch backend could not be checked")

    def backend(self, name: str = "ort"):
        if name == "ort":
            return self.ort
        b = self.torch()
        if b is None:
            raise ModelError(self.torch_error or "torch backend unavailable")
        return b


def load(path: str | Path, profile: str | Path | None = None, device: str = "auto",
         batch_size: int = 64, precision: str = "float32") -> LoadedModel:
    """Validate an ONNX file and resolve its profile (sidecar YAML or inferred)."""
    info = load_model_file(path)
    prof, from_file = resolve_profile(info, Path(profile) if profile else None)
    return LoadedModel(info=info, profile=prof, profile_from_file=from_file, device=device, batch_size=batch_size,
                       precision=precision)
