"""Purifiers: simple processing a platform (or an adversary) applies that may wash out a cloak."""

from __future__ import annotations

import cv2
import numpy as np

PURIFIERS = ("jpeg75", "jpeg50", "blur1", "resize50", "bits5")


def purify(images: np.ndarray, name: str) -> np.ndarray:
    """Apply purifier ``name`` to uint8 RGB images (N, H, W, 3)."""
    out = np.empty_like(images)
    for i, img in enumerate(images):
        if name.startswith("jpeg"):
            ok, enc = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(name[4:])])
            out[i] = cv2.imdecode(enc, cv2.IMREAD_COLOR)[..., ::-1]
        elif name == "blur1":
            out[i] = cv2.GaussianBlur(img, (0, 0), sigmaX=1.0)
        elif name == "resize50":
            h, w = img.shape[:2]
            small = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
            out[i] = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        elif name == "bits5":
            out[i] = (img >> 3) << 3
        else:
            raise ValueError(f"unknown purifier {name!r}; known: {', '.join(PURIFIERS)}")
    return out
