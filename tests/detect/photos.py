"""Real photographs that ship with well-kept packages (no face ships with faceaudit), and datasets built
from them: matplotlib's ``grace_hopper.jpg`` and scikit-image's ``astronaut``."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

GRACE_BOX = (173, 116, 184, 224)
"""MTCNN's box on grace_hopper.jpg (x, y, w, h)."""


def grace() -> np.ndarray:
    """Grace Hopper, RGB uint8 (600 x 512)."""
    from matplotlib import cbook

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def astronaut() -> np.ndarray:
    """Eileen Collins, RGB uint8 (512 x 512)."""
    import skimage.data

    return skimage.data.astronaut()


def face_crop(img: np.ndarray, box: tuple[int, int, int, int], margin: float = 0.35) -> np.ndarray:
    x, y, w, h = box
    mx, my = int(w * margin), int(h * margin)
    return img[max(0, y - my):y + h + my, max(0, x - mx):x + w + mx].copy()


def noise(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def pasted(face: np.ndarray, scale: float, canvas: tuple[int, int], seed: int) -> tuple[np.ndarray, tuple[int, int, float]]:
    """``face`` scaled by ``scale`` and pasted at a random offset into random noise; returns the image and
    (x offset, y offset, scale)."""
    rng = np.random.default_rng(seed)
    small = cv2.resize(face, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = canvas
    img = noise(h, w, seed + 1000)
    x = int(rng.integers(0, w - small.shape[1] + 1))
    y = int(rng.integers(0, h - small.shape[0] + 1))
    img[y:y + small.shape[0], x:x + small.shape[1]] = small
    return img, (x, y, scale)


def write_rgb(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))
    return path


def photo_dataset(root: Path, people: int = 8, images: int = 3, blanks: int = 2) -> Path:
    """A landmark-free dataset of real-photo variants: person k is Grace Hopper (even k) or the astronaut
    (odd k) pasted at random places and sizes into noise; the first ``blanks`` people get one extra photo of
    pure noise (no face). Columns: image, subject, group (a = Grace, b = astronaut)."""
    sources = {0: face_crop(grace(), GRACE_BOX), 1: face_crop(astronaut(), (182, 63, 87, 111))}
    rows = []
    for k in range(people):
        src = sources[k % 2]
        for j in range(images):
            seed = 100 * k + j
            scale = (0.55 if k % 2 == 0 else 1.1) * (1 + 0.15 * j)
            img, _ = pasted(src, scale, (320, 320), seed)
            name = f"p{k}/{j}.jpg"
            write_rgb(root / name, img)
            rows.append({"image": name, "subject": f"p{k}", "group": "ab"[k % 2]})
        if k < blanks:
            name = f"p{k}/blank.png"
            write_rgb(root / name, noise(240, 240, 7 + k))
            rows.append({"image": name, "subject": f"p{k}", "group": "ab"[k % 2]})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    return root
