"""SCRFD face detectors (InsightFace's ONNX exports with keypoints: ``scrfd_500m_bnkps``,
``scrfd_2.5g_bnkps``, ``scrfd_10g_bnkps``, the ``det_*.onnx`` of its model packs), decoded in numpy.

The conventions, as InsightFace's own runner (``insightface/model_zoo/scrfd.py``) and exporter
(``detection/scrfd/tools/scrfd2onnx.py``) have them:

* **Input**: one NCHW float tensor named ``input.1``; the photo letterboxed into 640x640 (scaled to fit,
  padded right and bottom with black), RGB (``cv2.dnn.blobFromImage(bgr, 1/128, size, 127.5,
  swapRB=True)``), ``(x - 127.5) / 128``.
* **Outputs**, by position (names differ between exports: ``score_8``... from the exporter, numbers in
  the released files): the scores of strides 8, 16, 32, then their box distances, then their keypoint
  distances: 9 tensors (6 without keypoints: refused here, there are no landmarks to align with; 15
  for five strides with ``num_anchors: 1``, given ``strides: [8, 16, 32, 64, 128]``). Each holds one
  row per anchor, ``(N, C)`` or ``(1, N, C)``: scores ``C = 1`` (sigmoid applied in the graph), boxes
  ``C = 4`` (left, top, right, bottom distances), keypoints ``C = 10`` (x, y offsets of five points).
* **Anchors** of a stride ``s`` over an (H, W) input: ``(H // s) x (W // s)`` locations in row-major
  order, each repeated ``num_anchors`` (2) times in a row; a location's centre is ``(col * s, row * s)``
  (no half-cell offset, unlike RetinaFace's priors).
* **Decoding**: distances are in units of the stride: box = ``(cx - l*s, cy - t*s, cx + r*s, cy + b*s)``
  (``distance2bbox``), point k = ``(cx + dx_k*s, cy + dy_k*s)`` (``distance2kps``), in input pixels.
* **Keypoints** come in the ArcFace template's order (image-left eye, image-right eye, nose, image-left
  and image-right mouth corner: InsightFace aligns them to that template as they are).
* InsightFace keeps candidates scoring at least 0.5 and suppresses overlaps above IoU 0.4: the
  profile's defaults here.

Two small differences from InsightFace's runner, both shared with the RetinaFace path: the letterbox
rounds each side to whole pixels and scales each axis back by its own factor (InsightFace truncates
and uses the height's factor for both) and shrinks with area interpolation; non-maximum suppression is
OpenCV's (boxes without InsightFace's +1 pixel).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from audit.errors import ModelError, ProfileError
from audit.intake.detectors import FormatProfile, OnnxDetector
from audit.models.profile import InputSpec

SCRFD_INPUT = {"name": "input.1", "size": (640, 640), "layout": "NCHW", "color": "RGB",
               "mean": (127.5, 127.5, 127.5), "std": (128.0, 128.0, 128.0)}
"""Defaults of an SCRFD profile's ``input`` fields (InsightFace's exports), applied per field."""
COLUMNS = {"scores": 1, "boxes": 4, "keypoints": 10}
"""Values per anchor in each kind of output, in the order the outputs come."""


class ScrfdProfile(FormatProfile):
    """How to run an SCRFD export (``NAME.profile.yaml`` beside it, ``kind: detector, format: scrfd``)."""

    input_defaults: ClassVar[dict] = SCRFD_INPUT
    name: str
    kind: Literal["detector"]
    format: Literal["scrfd"]
    strides: list[int] = Field(default_factory=lambda: [8, 16, 32], min_length=1)
    num_anchors: int = Field(2, ge=1)
    """Anchors per location of every stride."""
    input: InputSpec = Field(default_factory=lambda: InputSpec(**SCRFD_INPUT))
    """Graph input; each field left out takes the SCRFD default (:data:`SCRFD_INPUT`)."""
    outputs: list[str] | None = None
    """Output names: the scores of every stride, then the boxes, then the keypoints. Left out: the
    graph's outputs in their order (as InsightFace reads them)."""
    nms_threshold: float = Field(0.4, gt=0, le=1)
    min_score: float = Field(0.5, ge=0, le=1)
    """Candidates scoring below this are dropped before non-maximum suppression."""

    @model_validator(mode="after")
    def _check(self) -> "ScrfdProfile":
        if min(self.strides) <= 0:
            raise ValueError("strides must be positive")
        if self.outputs is not None and len(self.outputs) != 3 * len(self.strides):
            raise ValueError(f"outputs lists {len(self.outputs)} names; {len(self.strides)} strides need "
                             f"{3 * len(self.strides)} (scores, boxes and keypoints of each stride)")
        return self


def anchor_centres(size: tuple[int, int], stride: int, num_anchors: int) -> np.ndarray:
    """(N, 2) anchor centres ``x, y`` in input pixels of one stride over an (H, W) input, in SCRFD's order."""
    h, w = size
    rows, cols = np.mgrid[:h // stride, :w // stride]
    centres = np.stack([cols.ravel(), rows.ravel()], axis=1).astype(np.float64) * stride
    return np.repeat(centres, num_anchors, axis=0)


def decode_scrfd(scores: np.ndarray, dist: np.ndarray, kps: np.ndarray, centres: np.ndarray,
                 stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(boxes x1 y1 x2 y2, scores, points (N, 5, 2)) in input pixels from one stride's (N, 1) scores,
    (N, 4) box distances and (N, 10) keypoint distances (units of the stride)."""
    boxes = np.concatenate([centres - dist[:, :2] * stride, centres + dist[:, 2:] * stride], axis=1)
    pts = centres[:, None, :] + kps.reshape(-1, 5, 2) * stride
    return boxes, scores[:, 0], pts


class ScrfdDetector(OnnxDetector):
    """An SCRFD export run by onnxruntime (letterbox, run, threshold, NMS and scale-back of :class:`OnnxDetector`)."""

    profile_class = ScrfdProfile

    def _check_size(self, info, where: str) -> None:
        prof: ScrfdProfile = self.profile
        h, w = prof.input.size
        if h % max(prof.strides) or w % max(prof.strides):
            raise ProfileError(f"{where}: field 'input.size' = {[h, w]}: SCRFD needs a size divisible by its "
                               f"largest stride ({max(prof.strides)})")
        super()._check_size(info, where)

    def _prepare(self, info, where: str) -> None:
        prof: ScrfdProfile = self.profile
        graph = [o.name for o in info.outputs]
        n = 3 * len(prof.strides)
        if prof.outputs is None:
            if len(graph) != n:
                raise ModelError(f"{self.path}: an SCRFD detector with keypoints and strides {prof.strides} has {n} "
                                 f"outputs (scores, boxes, keypoints of each stride); this graph has {len(graph)}"
                                 + (" (no keypoints: no landmarks to align with)" if len(graph) == 2 * len(prof.strides)
                                    else ""))
            self._names = graph
        else:
            missing = [name for name in prof.outputs if name not in graph]
            if missing:
                raise ProfileError(f"{where}: field 'outputs' names {missing[0]!r}, which contradicts the graph: "
                                   f"graph outputs are {graph}")
            self._names = list(prof.outputs)
        self._centres = [anchor_centres(tuple(prof.input.size), s, prof.num_anchors) for s in prof.strides]

    def _output_names(self) -> list[str]:
        return self._names

    def _decode(self, outputs: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        prof: ScrfdProfile = self.profile
        k = len(prof.strides)
        parts = []
        for i, (stride, centres) in enumerate(zip(prof.strides, self._centres)):
            arrays = []
            for j, cols in enumerate(COLUMNS.values()):
                a = np.asarray(outputs[i + j * k], np.float64)
                if a.size != len(centres) * cols:
                    h, w = prof.input.size
                    raise ModelError(f"{self.path}: SCRFD output {self._names[i + j * k]!r} has shape "
                                     f"{list(a.shape)}, expected ({len(centres)}, {cols}) for stride {stride} at input "
                                     f"{h}x{w} with {prof.num_anchors} anchors; check 'input.size', 'strides', "
                                     "'num_anchors' and 'outputs' in the profile")
                arrays.append(a.reshape(len(centres), cols))
            parts.append(decode_scrfd(*arrays, centres, stride))
        return tuple(np.concatenate(p) for p in zip(*parts))
