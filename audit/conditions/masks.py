"""Occluders placed from facial points on aligned faces: face masks and sunglasses.

The surgical outline follows the masked-face study (mask "type a"): the jaw contour from
one cheek round the chin to the other, then up under the inner eye corners to the top of
the nose bridge. Jaw and nose-bridge points come from the dataset when it has them
(``pt_jaw0..6``, ``pt_nb``), otherwise from a face model fitted to the 5 landmarks.
"""

from __future__ import annotations

import cv2
import numpy as np

MASK_TYPES = ("surgical", "cloth", "n95")
SHIFT = 4  # sub-pixel bits for cv2 polygon drawing
SURGICAL_COLOURS = ((160, 200, 225), (235, 235, 235), (35, 35, 40), (150, 210, 200), (220, 170, 190))
CLOTH_COLOURS = ((180, 40, 40), (40, 70, 150), (60, 120, 60), (200, 160, 60), (90, 60, 120), (30, 30, 30))


def face_points(points: np.ndarray, names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(jaw (7, 2) left cheek -> chin -> right cheek, nose-bridge top (2,)) for one face."""
    idx = {n: i for i, n in enumerate(names)}
    if all(f"jaw{i}" in idx for i in range(7)) and "nb" in idx:
        return points[[idx[f"jaw{i}"] for i in range(7)]], points[idx["nb"]]
    le, re, nose, lm, rm = points[:5]
    eye_mid = (le + re) / 2
    right = (re - le) / max(np.linalg.norm(re - le), 1e-6)
    down = np.array([-right[1], right[0]])
    eye_d = np.linalg.norm(re - le)
    mouth_mid = (lm + rm) / 2
    centre = eye_mid + down * 0.25 * eye_d
    half_w = 1.08 * eye_d
    chin = np.dot(mouth_mid - centre, down) + 0.5 * eye_d
    t = np.linspace(np.pi - 0.25, 0.25, 7)
    s = np.sin(t)
    jaw = centre + np.outer(half_w * np.cos(t) * (1 - 0.25 * s**2.5), right) + np.outer(chin * s, down)
    return jaw, eye_mid + down * (-0.03 * eye_d)


def surgical_outline(points: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Polygon from the nose bridge down to the jaw (study's mask type a)."""
    jaw, nb = face_points(points, names)
    le, re = points[0], points[1]
    inner_l = le + 0.35 * (re - le)
    inner_r = re - 0.35 * (re - le)
    return np.concatenate([jaw, [[inner_r[0], jaw[-1][1]]], [nb], [[inner_l[0], jaw[0][1]]]])


def n95_outline(points: np.ndarray, names: tuple[str, ...], n: int = 40) -> np.ndarray:
    """A rounded cup from just under the nose bridge to below the chin."""
    jaw, nb = face_points(points, names)
    cx = (jaw[0][0] + jaw[-1][0]) / 2
    top, bottom = nb[1] + 4, jaw[3][1] + 1
    half_w = (jaw[-1][0] - jaw[0][0]) / 2 * 0.92
    cy, ry = (top + bottom) / 2, (bottom - top) / 2
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + half_w * np.cos(t), cy + ry * np.sin(t)], 1)


def _fill(shape: tuple[int, int], polys: list[np.ndarray]) -> np.ndarray:
    """Anti-aliased coverage in [0, 1]."""
    alpha = np.zeros(shape, np.uint8)
    pts = [np.round(p * (1 << SHIFT)).astype(np.int32) for p in polys]
    cv2.fillPoly(alpha, pts, 255, lineType=cv2.LINE_AA, shift=SHIFT)
    return alpha.astype(np.float32) / 255.0


def _texture(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "cloth":
        a = np.array(CLOTH_COLOURS[int(rng.integers(len(CLOTH_COLOURS)))], np.float32)
        b = np.array(CLOTH_COLOURS[int(rng.integers(len(CLOTH_COLOURS)))], np.float32)
        period = float(rng.uniform(4, 9))
        if rng.random() < 0.5:
            pattern = ((xx // period + yy // period) % 2)[..., None]
        else:
            pattern = ((xx + yy) // period % 2)[..., None]
        tex = a * (1 - pattern) + b * pattern
    else:
        base = SURGICAL_COLOURS[int(rng.integers(len(SURGICAL_COLOURS)))] if kind == "surgical" else (238, 236, 228)
        tex = np.broadcast_to(np.array(base, np.float32), (h, w, 3)).copy()
        if kind == "surgical":  # horizontal pleats
            tex *= (0.92 + 0.08 * np.cos(yy / float(rng.uniform(2.5, 4.0)) * np.pi))[..., None]
    tex *= rng.uniform(0.85, 1.1)
    tex += rng.normal(0, 4, tex.shape).astype(np.float32)
    return tex


def apply_mask(img: np.ndarray, points: np.ndarray, names: tuple[str, ...], kind: str,
               rng: np.random.Generator) -> np.ndarray:
    """Draw one mask of ``kind`` on one aligned face (uint8 RGB)."""
    h, w = img.shape[:2]
    if kind in ("surgical", "cloth"):
        poly = surgical_outline(points, names)
    elif kind == "n95":
        poly = n95_outline(points, names)
    else:
        raise ValueError(f"unknown mask type {kind!r}; known: {', '.join(MASK_TYPES)}")
    jitter = rng.normal(0, 0.6, poly.shape)
    alpha = _fill((h, w), [poly + jitter])[..., None]
    tex = _texture(kind, h, w, rng)
    out = img.astype(np.float32) * (1 - alpha) + tex * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def apply_sunglasses(img: np.ndarray, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Two dark lenses over the eyes and a bridge."""
    h, w = img.shape[:2]
    le, re = points[0], points[1]
    d = np.linalg.norm(re - le)
    rx, ry = 0.3 * d * rng.uniform(0.95, 1.1), 0.22 * d * rng.uniform(0.95, 1.1)
    t = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    lenses = [np.stack([c[0] + rx * np.cos(t), c[1] + ry * np.sin(t)], 1) for c in (le, re)]
    bridge = np.array([[le[0] + rx * 0.8, le[1] - 1.2], [re[0] - rx * 0.8, re[1] - 1.2],
                       [re[0] - rx * 0.8, re[1] + 0.8], [le[0] + rx * 0.8, le[1] + 0.8]])
    alpha = _fill((h, w), lenses + [bridge])[..., None]
    tint = np.array([20, 20, 25], np.float32) * rng.uniform(0.6, 1.4)
    out = img.astype(np.float32) * (1 - 0.92 * alpha) + tint * 0.92 * alpha
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
