"""Decoding, quality checks and alignment of face images.

Faces are aligned to the standard 5-point ArcFace template (112x112) when landmarks are
given, else assumed pre-aligned and resized. The template is scaled for other sizes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from skimage.transform import SimilarityTransform

from audit.records import USED_ANYWAY, QualityIssue  # noqa: F401  (re-exported: data-quality records)

ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
"""Left eye, right eye, nose tip, left and right mouth corners in a 112x112 aligned face."""

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000
MIN_SIDE = 24
"""Smallest image side that can hold a face: a smaller image (a 1x1 PNG) upscaled to the model's input is no
face, so it is a failure to acquire (``too_small``), never an aligned face."""


def template_for(size: tuple[int, int]) -> np.ndarray:
    """ArcFace template scaled to an (H, W) output size."""
    h, w = size
    return ARCFACE_TEMPLATE * np.array([w / 112.0, h / 112.0])


def file_problem(path: Path, row: int, image: str) -> tuple[QualityIssue | None, tuple[int, int] | None]:
    """What can be told of an image file without decoding it: ``(problem or None, (H, W) from its header or
    None)``. Missing, empty and oversized files, and headers that declare too many pixels, are refused here."""
    if not path.is_file():
        hint = " (the path has a '\\': write folders with '/')" if "\\" in image else ""
        return QualityIssue(image, row, "missing", f"{path} is a folder, not an image file" if path.is_dir()
                            else f"{path} does not exist{hint}"), None
    size = path.stat().st_size
    if size == 0:
        return QualityIssue(image, row, "empty", "zero-byte file"), None
    if size > MAX_FILE_BYTES:
        return QualityIssue(image, row, "too_large", f"{size} bytes > {MAX_FILE_BYTES}"), None
    declared = header_pixels(path)
    if declared is not None and declared[0] > MAX_PIXELS:
        # Refused from the header: a small PNG can declare 30000x30000 pixels and cost gigabytes to decode.
        return QualityIssue(image, row, "too_large", f"{declared[1]} (from the file header) > {MAX_PIXELS} "
                                                     "pixels; not decoded"), None
    return None, declared[2] if declared is not None else None


def read_image(path: Path, row: int, image: str) -> tuple[np.ndarray | None, QualityIssue | None]:
    """Decode to RGB uint8, or return the reason it cannot be used."""
    issue, _ = file_problem(path, row, image)
    if issue:
        return None, issue
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:  # e.g. a photo with mode 000: recorded, the others go on
        return None, QualityIssue(image, row, "unreadable", f"cannot read the file: {exc.strerror or exc}")
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        return None, QualityIssue(image, row, "unreadable", "not a decodable image")
    if jpeg_cut_off(data):
        return None, QualityIssue(image, row, "unreadable", "the JPEG file ends before its end-of-image marker (a "
                                                            "cut-off copy: its lower part would be decoded as grey)")
    if img.shape[0] * img.shape[1] > MAX_PIXELS:
        return None, QualityIssue(image, row, "too_large", f"{img.shape[1]}x{img.shape[0]} pixels")
    if min(img.shape[:2]) < MIN_SIDE:
        return None, QualityIssue(image, row, "too_small", f"{img.shape[1]}x{img.shape[0]} pixels; a face image "
                                                           f"needs at least {MIN_SIDE}x{MIN_SIDE}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB), None


def jpeg_cut_off(data: np.ndarray) -> bool:
    """Whether a JPEG file's bytes end before its end-of-image marker (a download or copy that stopped part-way).
    OpenCV 5 refuses such a file, but the 4.x releases the project allows decode it without a word, the rows it
    lacks grey, and the face was audited. The header segments are stepped over by their lengths (an EXIF thumbnail
    holds markers of its own) to the first start-of-scan; compressed data never holds the end marker's two bytes
    (0xFF is written 0xFF 0x00 there), so the file is whole when they come after it. Anything but a JPEG, or a header
    this does not follow: False (the decoder judges it)."""
    buf = data.tobytes()
    if buf[:2] != b"\xff\xd8":
        return False
    i = 2
    while i + 4 <= len(buf):
        if buf[i] != 0xFF:
            return False
        marker = buf[i + 1]
        if marker == 0xFF:  # a fill byte before a marker
            i += 1
            continue
        if marker == 0xD9:
            return False
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        start = i + 2 + int.from_bytes(buf[i + 2:i + 4], "big")
        if marker == 0xDA:  # start of scan: the end marker must follow it
            return buf.find(b"\xff\xd9", start) < 0
        i = start
    return True  # ends inside the header


def header_pixels(path: Path) -> tuple[int, str, tuple[int, int] | None] | None:
    """(pixel count, "WxH pixels", (H, W) or None) declared by the image header, read without decoding; None
    when Pillow cannot tell (OpenCV may still decode the file, and the decoded size is checked again)."""
    import re

    from PIL import Image

    try:
        with Image.open(path) as im:  # lazy: reads the header only
            w, h = im.size
            if _orientation(im) in (5, 6, 7, 8):  # EXIF orientation: stored on its side, shown upright (the decoder
                w, h = h, w  # rotates it, and landmarks are drawn on the upright photo)
            return w * h, f"{w}x{h} pixels", (h, w)
    except Image.DecompressionBombError as exc:  # Pillow refused it from the header for the same reason
        m = re.search(r"\((\d+) pixels\)", str(exc))
        n = int(m.group(1)) if m else MAX_PIXELS + 1
        return n, f"{n} pixels", None
    except Exception:  # noqa: BLE001 - not for Pillow to judge; OpenCV decides below
        return None


def _orientation(im) -> int | None:
    """The EXIF orientation tag of an opened image, None when it has none or its metadata cannot be read (a header
    with a damaged body is judged by its size, as before)."""
    try:
        return im.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 - metadata Pillow cannot parse: no orientation to apply
        return None


def landmark_problem(points: np.ndarray, shape: tuple[int, int] | None) -> str | None:
    """Why these points cannot place a face in an (H, W) image, or None when they can.

    Degenerate points would make the similarity transform singular or absurd (all zero, 1e308,
    everything on a line) and the face silently mis-aligned; such rows become ``bad_landmarks``
    data-quality records instead.
    """
    if not np.all(np.isfinite(points)):
        return "non-finite landmark coordinate(s)"
    five = points[:5]
    if shape is not None:  # unknown until decoded when the header cannot be read
        h, w = shape
        # Points may sit a little outside a tight crop, not far away.
        if np.any(five < -0.5 * max(h, w)) or np.any(five[:, 0] > 1.5 * w) or np.any(five[:, 1] > 1.5 * h):
            return f"landmarks outside the {w}x{h} image"
    spread = np.linalg.svd(five - five.mean(0), compute_uv=False)
    if np.linalg.norm(five[1] - five[0]) < 1.0 or spread[0] < 1.0:
        return "landmarks coincide (e.g. all zero)"
    if spread[1] < 0.05 * spread[0]:
        return "landmarks lie on a line"
    return None


def _transform(landmarks: np.ndarray | None, size: tuple[int, int]) -> np.ndarray | None:
    """The 2x3 similarity transform from an image's first five points to the template, or None (no points, or a
    degenerate estimate: the image is then resized and the template stands in for the points)."""
    if landmarks is None or not np.all(np.isfinite(landmarks[:5])):
        return None
    dst = template_for(size)
    tform = SimilarityTransform.from_estimate(landmarks[:5].astype(np.float64), dst) \
        if hasattr(SimilarityTransform, "from_estimate") else None
    if tform is None:
        tform = SimilarityTransform()
        if not tform.estimate(landmarks[:5].astype(np.float64), dst):
            tform = None
    if tform is None or not np.all(np.isfinite(tform.params)):
        return None
    return tform.params[:2]


def aligned_points(landmarks: np.ndarray | None, size: tuple[int, int], m: np.ndarray | None = None) -> np.ndarray:
    """Where :func:`align` puts the points (K, 2), known without the pixels (``m``: the transform, when known).
    Without landmarks, or when they cannot be fitted, the template stands in (extra points at its centre, so
    the count stays K)."""
    m = _transform(landmarks, size) if m is None else m
    if m is None:
        dst = template_for(size)
        extra = 0 if landmarks is None else len(landmarks) - 5
        return np.concatenate([dst, np.repeat(dst.mean(0, keepdims=True), extra, 0)]).astype(np.float32)
    return (landmarks @ m[:, :2].T + m[:, 2]).astype(np.float32)


def align(img: np.ndarray, landmarks: np.ndarray | None, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Warp to the template (or resize); returns the face and its points in face coordinates.

    ``landmarks`` is (K, 2) with K >= 5: the first five (ArcFace order) define the
    similarity transform, and every point (extra jaw / nose-bridge points too) is mapped.
    Without landmarks the image is resized and the template stands in for the points.
    """
    h, w = size
    m = _transform(landmarks, size)
    if m is None:
        interp = cv2.INTER_AREA if landmarks is not None or img.shape[0] > h else cv2.INTER_LINEAR
        return cv2.resize(img, (w, h), interpolation=interp), aligned_points(landmarks, size)
    out = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out, aligned_points(landmarks, size, m)


def align_one(path: Path, row: int, image: str, landmarks: np.ndarray | None, size: tuple[int, int]
              ) -> tuple[np.ndarray | None, np.ndarray | None, QualityIssue | None]:
    """Read and align one image: ``(face, points, None)`` or ``(None, None, the reason it cannot be used)``."""
    img, issue = read_image(path, row, image)
    if issue:
        return None, None, issue
    problem = None if landmarks is None else landmark_problem(landmarks, img.shape[:2])
    if problem:
        return None, None, QualityIssue(image, row, "bad_landmarks", problem)
    face, pts = align(img, landmarks, size)
    return face, pts, None


def screen(paths: list[Path], images: list[str], landmarks: np.ndarray | None, workers: int = 4,
           known: dict[int, QualityIssue] | None = None) -> list[QualityIssue]:
    """The problems of many images that show without decoding them (:func:`file_problem`, and landmarks that
    cannot place a face in an image of the size its header declares), in threads; ``known`` as for
    :func:`load_aligned`. A file whose header cannot be read is left for the decoder to judge, landmarks and
    all (a file that does not decode is ``unreadable``, whatever its points)."""
    known = known or {}

    def one(i: int):
        if i in known:
            return known[i]
        issue, shape = file_problem(paths[i], i + 1, images[i])
        if issue is None and landmarks is not None and shape is not None:
            problem = landmark_problem(landmarks[i], shape)
            if problem:
                issue = QualityIssue(images[i], i + 1, "bad_landmarks", problem)
        return issue

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [r for r in pool.map(one, range(len(paths))) if r is not None]


def load_aligned(paths: list[Path], images: list[str], landmarks: np.ndarray | None, size: tuple[int, int],
                 workers: int = 4, known: dict[int, QualityIssue] | None = None
                 ) -> tuple[np.ndarray, np.ndarray, list[QualityIssue]]:
    """Decode and align many images in threads (OpenCV releases the GIL).

    ``known`` maps 0-based positions to problems found earlier (e.g. by face detection): those
    images are not read, and the problem is reported for them. Returns ``(faces, points, issues)``:
    faces and their points for usable images, in order, and ``issues`` naming the rest.
    """
    known = known or {}

    def one(i: int):
        if i in known:
            return None, None, known[i]
        return align_one(paths[i], i + 1, images[i], None if landmarks is None else landmarks[i], size)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, range(len(paths))))
    faces = [r[0] for r in results if r[2] is None]
    pts = [r[1] for r in results if r[2] is None]
    issues = [r[2] for r in results if r[2] is not None]
    h, w = size
    if faces:
        return np.stack(faces), np.stack(pts), issues
    k = 5 if landmarks is None else landmarks.shape[1]
    return np.zeros((0, h, w, 3), np.uint8), np.zeros((0, k, 2), np.float32), issues
