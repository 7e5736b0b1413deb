"""Inference backends behind one interface.

``ort`` runs the graph with onnxruntime. ``torch`` runs the same graph converted by
onnx2torch and is differentiable (gradient probes). Both take batches of aligned faces as
``uint8`` or float arrays of shape (N, H, W, 3), RGB, 0-255, and apply the profile's
resize, colour order, normalisation and layout themselves.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterator

import cv2
import numpy as np

from audit.devices import PRECISIONS, resolve_device, resolve_precision  # noqa: F401  (re-exported)
from audit.errors import ModelError
from audit.models.onnx_file import ModelInfo
from audit.models.profile import Profile

NAN_OUTPUT = "{model}: output '{output}' contains NaN or infinite values ({where})"


class NonFiniteOutput(ModelError):
    """A model output with NaN or infinite values, for images ``first``..``last`` (positions in what the caller
    passed); a caller that knows the images' files names them (:meth:`naming`)."""

    def __init__(self, model: str, output: str, first: int, last: int, where: str | None = None):
        self.model, self.output, self.first, self.last = model, output, first, last
        super().__init__(NAN_OUTPUT.format(model=model, output=output, where=where or f"images {first}..{last}"))

    def shifted(self, by: int) -> "NonFiniteOutput":
        return NonFiniteOutput(self.model, self.output, self.first + by, self.last + by)

    def naming(self, name_of, context: str = "") -> "NonFiniteOutput":
        """The same error naming the first image of the batch by ``name_of(position)`` (its file)."""
        more = f" and images after it up to {name_of(self.last)}" if self.last > self.first else ""
        return NonFiniteOutput(self.model, self.output, self.first, self.last,
                               f"for {name_of(self.first)}{more}{context}")
TORCH_CONVERT_FAILED = (
    "{model}: onnx2torch could not convert the graph ({why}); the ort backend still works, "
    "and gradient-based probes fall back to surrogate / black-box modes"
)


def preprocess(images: np.ndarray, profile: Profile) -> np.ndarray:
    """Aligned RGB 0-255 images (N, H, W, 3) -> float32 model input in the profile's layout."""
    spec = profile.input
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ModelError(f"{profile.name}: expected images of shape (N, H, W, 3), got {x.shape}")
    x = resize(x, spec.size)
    if spec.color == "BGR":
        x = x[..., ::-1]
    mean, std = np.asarray(spec.mean, np.float32), np.asarray(spec.std, np.float32)
    if spec.layout == "NCHW":
        # Reorder the (small, uint8) images first, then convert once and normalise in place: the same float32
        # operations as (x - mean) / std, with one full-size copy instead of four.
        x = x.transpose(0, 3, 1, 2)
        mean, std = mean.reshape(-1, 1, 1), std.reshape(-1, 1, 1)
    out = np.ascontiguousarray(x, dtype=np.float32)
    out -= mean
    out /= std
    return out


def resize(images: np.ndarray, size) -> np.ndarray:
    """Images (N, H, W, 3) at ``size`` (h, w), as :func:`preprocess` resizes them (area interpolation, dtype kept)."""
    h, w = size
    if images.shape[1:3] == (h, w):
        return images
    return np.stack([cv2.resize(np.ascontiguousarray(im), (w, h), interpolation=cv2.INTER_AREA) for im in images])


def area_matrices(src: tuple[int, int], dst: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, cols)``: the linear maps that resize an (H, W) image to ``dst`` (h, w) as :func:`resize` does
    (OpenCV's area interpolation, separable), ``rows`` (h, H) on the left and ``cols`` (W, w) on the right, read off
    OpenCV itself so that a differentiable pass resizes as onnxruntime's inputs were (float images within 1e-4; uint8
    ones as OpenCV rounds them, within 1 of 255). Each is read off the same (H, W) -> (h, w) resize, of images with
    one row (one column) of ones: OpenCV takes another path when one side shrinks and the other grows, on both axes,
    so one axis resized alone would give the other's weights wrongly."""
    (hin, win), (h, w) = src, dst

    def impulse(k: int, axis: int) -> np.ndarray:  # row (axis 0) or column (axis 1) k all ones, resized
        img = np.zeros((hin, win), np.float32)
        np.moveaxis(img, axis, 0)[k] = 1
        return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA).reshape(h, w)

    # every output column of a resized row k is rows[:, k], every output row of a resized column k is cols[k] (the
    # other map's rows and columns sum to 1)
    return (np.stack([impulse(k, 0)[:, 0] for k in range(hin)], axis=1),
            np.stack([impulse(k, 1)[0] for k in range(win)]))


def _batches(n: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(n, start + size)


class Backend:
    """Common batching, NaN checks and output interpretation."""

    name = "base"

    def __init__(self, info: ModelInfo, profile: Profile, batch_size: int = 64):
        self.info = info
        self.profile = profile
        self.batch_size = batch_size
        self.output_names = [o.name for o in info.outputs]
        inp = info.input(profile.input.name)
        self.dynamic_batch = bool(inp and not isinstance(inp.shape[0], int))
        """True when the graph's batch dimension is symbolic; else batches are looped one by one."""

    # -- to be provided by subclasses
    def _run_arrays(self, x: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError

    def run_preprocessed(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Run already-preprocessed inputs, batching (or looping for a fixed batch of 1)."""
        parts: list[list[np.ndarray]] = []
        step = self.batch_size if self.dynamic_batch else 1
        for start, stop in _batches(len(x), step):
            outs = self._run_arrays(x[start:stop])
            for name, arr in zip(self.output_names, outs):
                if not np.all(np.isfinite(arr)):
                    first, last = start, stop - 1
                    if arr.ndim and len(arr) == stop - start:  # one row per image: the images that gave them
                        bad = np.flatnonzero(~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1))
                        first, last = start + int(bad[0]), start + int(bad[-1])
                    raise NonFiniteOutput(self.info.path.name, name, first, last)
            parts.append(outs)
        if not parts:
            return {n: np.zeros((0,), np.float32) for n in self.output_names}
        return {name: np.concatenate([p[i] for p in parts]) for i, name in enumerate(self.output_names)}

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Raw outputs for aligned RGB 0-255 images, in chunks so memory stays bounded."""
        chunk = max(self.batch_size, 1) * 4
        results: list[dict[str, np.ndarray]] = []
        for start, stop in _batches(len(images), chunk):
            try:
                results.append(self.run_preprocessed(preprocess(images[start:stop], self.profile)))
            except NonFiniteOutput as exc:  # positions in ``images``, not in this chunk
                raise exc.shifted(start) from None
        if not results:
            return self.run_preprocessed(np.zeros((0, 1), np.float32))
        return {k: np.concatenate([r[k] for r in results]) for k in results[0]}

    def embed(self, images: np.ndarray) -> np.ndarray:
        """Embeddings (N, D) as float32; for attribute models, the concatenated head outputs."""
        outs = self.run(images)
        if self.profile.kind == "embedding":
            emb = outs[self.profile.embedding_output]
        else:
            emb = np.concatenate([outs[h.output].reshape(len(images), -1) for h in self.profile.heads], axis=1)
        return emb.reshape(len(images), -1).astype(np.float32)

    def predict(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Per attribute head: class probabilities (categorical) or values (regression)."""
        outs = self.run(images)
        return interpret_heads(self.profile, outs)

    def predict_from_embeddings(self, emb: np.ndarray) -> dict[str, np.ndarray]:
        """:meth:`predict` from what :meth:`embed` returned for an attribute model (the heads' outputs side by
        side), so the stored outputs of a run are read instead of decoding and running the images again."""
        if getattr(self, "_head_widths", None) is None:  # learnt once from one blank face
            h, w = self.profile.input.size
            outs = self.run(np.zeros((1, h, w, 3), np.uint8))
            self._head_widths = [outs[head.output].reshape(1, -1).shape[1] for head in self.profile.heads]
        parts = np.split(emb, np.cumsum(self._head_widths)[:-1], axis=1)
        return interpret_heads(self.profile, {head.output: part for head, part in zip(self.profile.heads, parts)})


def interpret_heads(profile: Profile, outs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    result = {}
    for h in profile.heads:
        raw = outs[h.output].reshape(len(outs[h.output]), -1)
        if h.type == "categorical":
            # Accept logits or probabilities: softmax is idempotent in argmax and we only
            # need a proper distribution.
            if not (np.all(raw >= 0) and np.allclose(raw.sum(1), 1.0, atol=1e-3)):
                z = raw - raw.max(1, keepdims=True)
                raw = np.exp(z) / np.exp(z).sum(1, keepdims=True)
            result[h.attribute] = raw
        else:
            result[h.attribute] = raw[:, 0] * h.scale + h.offset
    return result


def ort_session(path, providers: list[str], name, what: str, threads: int = 0):
    """An onnxruntime session with faceaudit's settings (its warnings off; ``threads`` intra-op threads when
    set). A graph onnxruntime refuses is one line: ``NAME: onnxruntime cannot load WHAT: <why>``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as exc:
        raise ModelError(f"{name}: onnxruntime cannot load {what}: {str(exc).splitlines()[0][:300]}") from None


class OrtBackend(Backend):
    """onnxruntime: CPU provider by default, CUDA provider when installed and asked for."""

    name = "ort"

    def __init__(self, info: ModelInfo, profile: Profile, device: str = "auto", batch_size: int = 64, threads: int = 0):
        super().__init__(info, profile, batch_size)
        import onnxruntime as ort

        available = ort.get_available_providers()
        providers = ["CPUExecutionProvider"]
        if device in ("auto", "cuda") and "CUDAExecutionProvider" in available:
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        elif device == "cuda":
            raise ModelError("--device cuda: onnxruntime has no CUDA provider here (install onnxruntime-gpu)")
        self.session = ort_session(info.path, providers, info.path.name, "the model", threads)
        self.providers = self.session.get_providers()
        self.device = "cuda" if "CUDAExecutionProvider" in self.providers else "cpu"

    def _run_arrays(self, x: np.ndarray) -> list[np.ndarray]:
        try:
            return self.session.run(self.output_names, {self.profile.input.name: x})
        except Exception as exc:
            raise ModelError(f"{self.info.path.name}: inference failed: {str(exc).splitlines()[0][:300]}") from None


def _fold_constants(proto):
    """A copy of the graph with constants folded and Identity aliases of initializers removed."""
    import onnx
    import onnxscript.optimizer

    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    return onnxscript.optimizer.optimize(copy)


class TorchBackend(Backend):
    """The graph converted with onnx2torch; differentiable, CPU or CUDA.

    ``precision`` is what the differentiable pass (:meth:`embed_tensor`, which gradient attacks use) computes
    in: ``float32``, or ``bfloat16`` under autocast (convolutions and matrix products in bfloat16, weights and
    the returned embeddings in float32). Inference (:meth:`run`, the parity check) is always float32."""

    name = "torch"

    def __init__(self, info: ModelInfo, profile: Profile, device: str = "auto", batch_size: int = 64,
                 precision: str = "float32"):
        super().__init__(info, profile, batch_size)
        self.precision = precision  # resolved: checked by LoadedModel, which alone builds this backend
        import torch
        from onnx2torch import convert

        if info.proto is None:
            raise ModelError(f"{info.path.name}: the ONNX graph was not kept in memory")
        try:
            module = convert(info.proto)
            self.conversion = "onnx2torch"
        except Exception as exc:
            why = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            try:
                # Exporters alias equal constants through Identity nodes (e.g. two zero conv biases), which
                # onnx2torch cannot read as initializers; onnxscript's optimizer folds them away. The parity
                # check against onnxruntime still judges the result.
                module = convert(_fold_constants(info.proto))
                self.conversion = "onnx2torch after constant folding (onnxscript optimizer)"
            except Exception:
                raise ModelError(TORCH_CONVERT_FAILED.format(model=info.path.name, why=why)) from None
        self.device = resolve_device(device)
        self.module = module.to(self.device).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.torch = torch
        spec = profile.input
        self._mean = torch.tensor(spec.mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(spec.std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.dynamic_batch = True  # the converted module accepts any batch size
        self._area_cache: dict = {}

    def _call(self, x):
        out = self.module(x)
        if not isinstance(out, (tuple, list)):
            out = (out,)
        return list(out)

    def _run_arrays(self, x: np.ndarray) -> list[np.ndarray]:
        # Inference is float32 throughout: cuDNN would otherwise run convolutions in TF32 on CUDA (torch's default),
        # about 1e-3 relative error, which the parity check with onnxruntime would rightly refuse.
        with self.torch.no_grad(), self.torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            outs = self._call(self.torch.from_numpy(x).to(self.device))
        return [o.detach().float().cpu().numpy() for o in outs]

    def forward_tensor(self, x):
        """Differentiable forward: ``x`` is an (N, 3, H, W) RGB float tensor on 0-255.

        Returns the list of graph outputs as tensors. An image of another size than the profile's is resized as
        :func:`preprocess` resizes it (area interpolation, :func:`area_matrices`): an attack optimised through
        another resize (bilinear samples only some of the pixels an area average reads) would be judged by
        onnxruntime on images it was not made for.
        """
        torch = self.torch
        spec = self.profile.input
        if tuple(x.shape[-2:]) != tuple(spec.size):
            rows, cols = self._area(tuple(x.shape[-2:]), x.device, torch.float64 if x.dtype == torch.float64
                                    else torch.float32)
            with torch.autocast(x.device.type, enabled=False):  # in full precision, as onnxruntime's inputs are
                x = rows @ x.to(rows.dtype) @ cols
        if spec.color == "BGR":
            x = x.flip(1)
        x = (x - self._mean) / self._std
        if spec.layout == "NHWC":
            x = x.permute(0, 2, 3, 1)
        return self._call(x.contiguous())

    def _area(self, src: tuple[int, int], device, dtype):
        """:func:`area_matrices` from ``src`` to the input size as tensors on ``device``, computed once per backend
        (an attack resizes at every step)."""
        key = (src, str(device), dtype)
        if key not in self._area_cache:
            self._area_cache[key] = tuple(self.torch.tensor(m, dtype=dtype, device=device)
                                          for m in area_matrices(src, tuple(self.profile.input.size)))
        return self._area_cache[key]

    def run_differentiable(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Raw outputs through :meth:`forward_tensor` (the differentiable pass the gradient attacks use: colour order,
        normalisation and layout in torch), in float32, for aligned RGB 0-255 images resized as :func:`preprocess`
        resizes them, so its parity with onnxruntime is checked on the same inputs as :meth:`run`'s."""
        torch = self.torch
        x = resize(np.asarray(images), self.profile.input.size)
        if not len(x):
            return {n: np.zeros((0,), np.float32) for n in self.output_names}
        outs = []
        with torch.no_grad(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            for start, stop in _batches(len(x), max(self.batch_size, 1)):
                t = torch.from_numpy(np.ascontiguousarray(x[start:stop])).permute(0, 3, 1, 2).float().to(self.device)
                outs.append([o.detach().float().cpu().numpy() for o in self.forward_tensor(t)])
        return {name: np.concatenate([o[i] for o in outs]) for i, name in enumerate(self.output_names)}

    def embed_tensor(self, x, precision: str | None = None):
        """Differentiable embeddings (float32) for an (N, 3, H, W) RGB 0-255 tensor, in ``precision`` (default
        :attr:`precision`; an attack that needs float32 whatever the run's setting passes ``"float32"``).

        Autocast is entered here, per call, rather than around an attack: it is thread-local, and cloak
        attacks run in worker threads."""
        torch = self.torch
        with torch.autocast(self.device, dtype=torch.bfloat16, enabled=(precision or self.precision) == "bfloat16"):
            outs = self.forward_tensor(x)
        idx = self.output_names.index(self.profile.embedding_output) if self.profile.kind == "embedding" else 0
        return outs[idx].reshape(x.shape[0], -1).float()


@dataclass(frozen=True)
class ParityResult:
    """Agreement of the torch backend with onnxruntime on one batch, over both of its passes: inference
    (:meth:`TorchBackend.run`, numpy preprocessing) and the differentiable pass the gradient attacks use
    (:meth:`TorchBackend.run_differentiable`); the worst of the two is what passes or fails."""

    n: int
    """Images compared."""
    max_abs_diff: float
    """Largest absolute difference over every output element of either pass."""
    min_cosine: float
    """Smallest per-image cosine similarity between onnxruntime's outputs and either pass's."""
    passed: bool
    """max_abs_diff <= atol_rel * output scale and min_cosine >= min_cos."""
    passes: dict
    """``{"inference" | "differentiable": {"max_abs_diff", "min_cosine"}}``: each pass's own agreement."""

    def to_dict(self) -> dict:
        return asdict(self)


def _agreement(a: dict[str, np.ndarray], b: dict[str, np.ndarray], n: int) -> tuple[float, float, float]:
    """(largest absolute difference, smallest per-image cosine, output scale) of outputs ``b`` against ``a``."""
    max_abs, min_c, scale = 0.0, 1.0, 0.0
    for name in a:
        x = a[name].reshape(n, -1).astype(np.float64)
        y = b[name].reshape(n, -1).astype(np.float64)
        max_abs = max(max_abs, float(np.abs(x - y).max(initial=0.0)))
        scale = max(scale, float(np.abs(x).max(initial=0.0)))
        nx, ny = np.linalg.norm(x, axis=1), np.linalg.norm(y, axis=1)
        cos = (x * y).sum(1) / np.maximum(nx * ny, 1e-12)
        cos[(nx < 1e-12) & (ny < 1e-12)] = 1.0
        if len(cos):
            min_c = min(min_c, float(cos.min()))
    return max_abs, min_c, scale


def parity_check(ort_b: Backend, torch_b: Backend, images: np.ndarray,
                 atol_rel: float = 1e-3, min_cos: float = 0.9999) -> ParityResult:
    """Compare the torch backend's inference and differentiable passes with onnxruntime on the same batch (a
    conversion can agree in one and not the other: the attacks' colour order and normalisation are torch's own).
    Another backend (onnxruntime on CUDA, in the GPU benchmark) has only the inference pass to compare."""
    a = ort_b.run(images)
    passes, scale = {}, 0.0
    runs = [("inference", torch_b.run)] + ([("differentiable", torch_b.run_differentiable)]
                                            if isinstance(torch_b, TorchBackend) else [])
    for name, run in runs:
        max_abs, min_c, s = _agreement(a, run(images), len(images))
        passes[name] = {"max_abs_diff": max_abs, "min_cosine": min_c}
        scale = max(scale, s)
    max_abs = max(p["max_abs_diff"] for p in passes.values())
    min_c = min(p["min_cosine"] for p in passes.values())
    passed = max_abs <= atol_rel * max(scale, 1.0) and min_c >= min_cos
    return ParityResult(n=len(images), max_abs_diff=max_abs, min_cosine=min_c, passed=passed, passes=passes)
