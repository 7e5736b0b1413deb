"""Drawing a synthetic face: canonical geometry, nuisance, landmarks.

The face is drawn in a canonical 112-px frame at ``SUPERSAMPLE`` times the resolution,
then a small roll/scale/shift is applied and the image is area-downsampled to 112x112
(anti-aliased). Every landmark is computed from the same geometry and pushed through the
same transform, so its position is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageDraw

from audit.seeding import rng_for
from audit.synth.people import IRIS_RGB, Person

SIZE = 112
SUPERSAMPLE = 3
CX, CY = 56.0, 60.0        # face centre in the canonical frame
CHIN_DROP = 48.0           # chin below the face centre
N_JAW = 7
POINT_NAMES = ["lm0", "lm1", "lm2", "lm3", "lm4"] + [f"pt_jaw{i}" for i in range(N_JAW)] + ["pt_nb"]
"""Rendered points: 5 ArcFace landmarks, jaw contour left->chin->right, nose bridge top."""


@dataclass(frozen=True)
class Nuisance:
    """What changes between two images of one person."""

    roll: float
    scale: float
    shift: tuple[float, float]
    light_angle: float
    light: float
    smile: float
    mouth_open: float
    glasses: bool
    bg: tuple[tuple[int, int, int], tuple[int, int, int]]
    noise: float
    jpeg: int


def make_nuisance(seed: int, pid: str, k: int) -> Nuisance:
    r = rng_for(seed, "image", pid, k)
    return Nuisance(
        roll=float(r.uniform(-8, 8)), scale=float(r.uniform(0.94, 1.06)),
        shift=(float(r.uniform(-3, 3)), float(r.uniform(-3, 3))),
        light_angle=float(r.uniform(0, 2 * np.pi)), light=float(r.uniform(0.0, 0.3)),
        smile=float(r.uniform(-0.3, 1.0)), mouth_open=float(r.uniform(0, 1) ** 3),
        glasses=bool(r.random() < 0.15),
        bg=(tuple(int(v) for v in r.integers(20, 235, 3)), tuple(int(v) for v in r.integers(20, 235, 3))),
        noise=float(r.uniform(0, 4)), jpeg=int(r.integers(70, 96)),
    )


def _jaw_contour(p: Person, n: int = 48) -> np.ndarray:
    """Lower face outline from the left cheek through the chin to the right cheek."""
    t = np.linspace(np.pi, 0, n)
    s = np.sin(t)
    narrowing = 1 - (1 - p.jaw) * 0.55 * s**2.5
    x = CX + p.face_w * np.cos(t) * narrowing
    y = CY + CHIN_DROP * s
    return np.stack([x, y], 1)


def geometry(p: Person, nz: Nuisance) -> dict[str, np.ndarray]:
    """Canonical-frame points (112-px units) used for drawing and as landmarks."""
    eye_y = 51.6 + p.eye_dy
    nose_y = 71.7 + p.nose_len
    mouth_y = 92.3 + p.mouth_dy
    lm = np.array([[CX - p.eye_dx, eye_y], [CX + p.eye_dx, eye_y], [CX, nose_y],
                   [CX - p.mouth_w - 0.6 * nz.smile, mouth_y - 1.5 * nz.smile],
                   [CX + p.mouth_w + 0.6 * nz.smile, mouth_y - 1.5 * nz.smile]])
    t = np.linspace(np.pi - 0.25, 0.25, N_JAW)
    s = np.sin(t)
    jaw = np.stack([CX + p.face_w * np.cos(t) * (1 - (1 - p.jaw) * 0.55 * s**2.5), CY + CHIN_DROP * s], 1)
    nb = np.array([[CX, eye_y - 1.0]])
    return {"points": np.concatenate([lm, jaw, nb]), "contour": _jaw_contour(p)}


def _transform(nz: Nuisance) -> np.ndarray:
    """2x3 similarity (canonical 112 units -> output pixels): roll about the centre, scale, shift."""
    a = np.deg2rad(nz.roll)
    c, s = np.cos(a) * nz.scale, np.sin(a) * nz.scale
    m = np.array([[c, -s, 0.0], [s, c, 0.0]])
    centre = np.array([CX, CY])
    m[:, 2] = centre - m[:, :2] @ centre + np.array(nz.shift)
    return m


def _age_factor(age: int) -> float:
    return float(np.clip((age - 25) / 50, 0, 1))


def draw(p: Person, nz: Nuisance) -> tuple[np.ndarray, np.ndarray]:
    """Render one image; returns (uint8 RGB 112x112x3, points (13, 2) in output pixels)."""
    S = SUPERSAMPLE
    W = SIZE * S
    geo = geometry(p, nz)
    pts = geo["points"]
    af = _age_factor(p.age)

    # Background: a linear gradient between two colours.
    g = np.linspace(0, 1, W)[None, :, None]
    bg = (np.array(nz.bg[0])[None, None] * (1 - g) + np.array(nz.bg[1])[None, None] * g)
    canvas = Image.fromarray(np.broadcast_to(bg, (W, W, 3)).astype(np.uint8))
    d = ImageDraw.Draw(canvas)
    sc = lambda xy: [(float(x) * S, float(y) * S) for x, y in xy]  # noqa: E731

    skin = tuple(int(v) for v in p.skin_rgb)
    shade = tuple(int(v * 0.82) for v in p.skin_rgb)
    grey = 0.75 * af**1.5
    hair = tuple(int(h * (1 - grey) + 175 * grey) for h in p.hair_rgb)
    top = CY - p.face_up

    # Long hair falls behind the head.
    if p.hair_style == 2:
        d.rectangle(sc([(CX - p.face_w - 9, top + 8), (CX + p.face_w + 9, CY + 52)]), fill=hair)
    # Neck and ears.
    d.rectangle(sc([(CX - 14, CY + 30), (CX + 14, SIZE + 5)]), fill=shade)
    for side in (-1, 1):
        ex = CX + side * (p.face_w + 2)
        d.ellipse(sc([(ex - 5 * p.ear, 58 - 9 * p.ear), (ex + 5 * p.ear, 58 + 9 * p.ear)]), fill=shade)
    # Face: upper ellipse + jaw contour.
    d.ellipse(sc([(CX - p.face_w, top), (CX + p.face_w, CY + 20)]), fill=skin)
    d.polygon(sc(geo["contour"]), fill=skin)
    # Beard over the lower face.
    if p.beard > 0:
        beard = tuple(int(h * (0.8 + 0.2 * (1 - p.beard))) for h in hair)
        c = geo["contour"]
        lower = c[(c[:, 1] > 74)]
        poly = np.concatenate([lower, [[CX + 13, 86], [CX - 13, 86]]])
        d.polygon(sc(poly), fill=beard)
    # Hair on top.
    hl = top + 10 + p.hair_line + (8 * af if p.hair_style == 3 else 0)
    if p.hair_style != 3 or af < 0.9:
        d.chord(sc([(CX - p.face_w - 3, top - 10), (CX + p.face_w + 3, 2 * hl - top + 10)]), 180, 360, fill=hair)
    if p.hair_style == 1:
        for side in (-1, 1):
            x0 = CX + side * (p.face_w - 2)
            d.rectangle(sc([(min(x0, x0 + side * 7), hl - 2), (max(x0, x0 + side * 7), 66)]), fill=hair)
    # Wrinkles: forehead lines and crow's feet, stronger with age.
    if af > 0.05:
        wr = tuple(int(v * (1 - 0.28 * af)) for v in p.skin_rgb)
        for k in range(1 + int(3 * af)):
            y = hl + 6 + 4 * k
            if y < pts[0, 1] - 9:
                d.arc(sc([(CX - 18, y - 2), (CX + 18, y + 6)]), 200, 340, fill=wr, width=max(1, int(S * af)))
        for side, (x, y) in zip((-1, 1), pts[:2]):
            for k in range(1 + int(2 * af)):
                xx = x + side * (8 * p.eye_size + 2)
                d.line(sc([(xx, y - 2 + 2 * k), (xx + side * 4, y - 3 + 3 * k)]), fill=wr, width=max(1, int(S * af)))
    # Eyes and brows.
    iris = IRIS_RGB[p.iris]
    for side, (x, y) in zip((-1, 1), pts[:2]):
        ew, eh = 6.5 * p.eye_size, 3.2 * p.eye_size
        d.ellipse(sc([(x - ew, y - eh), (x + ew, y + eh)]), fill=(245, 245, 240))
        d.ellipse(sc([(x - 2.6 * p.eye_size, y - 2.6 * p.eye_size), (x + 2.6 * p.eye_size, y + 2.6 * p.eye_size)]),
                  fill=iris)
        d.ellipse(sc([(x - 1.1, y - 1.1), (x + 1.1, y + 1.1)]), fill=(10, 10, 10))
        by = y - p.brow_gap
        inner, outer = (x - side * 6, by + p.brow_tilt * 4), (x + side * 7, by - p.brow_tilt * 4)
        d.line(sc([inner, outer]), fill=tuple(int(h * 0.9) for h in hair), width=int(p.brow_thick * S))
    # Nose: bridge shadow and nostrils.
    nx, ny = pts[2]
    d.line(sc([(CX - 2, pts[0, 1] + 2), (nx - 3 * p.nose_w, ny)]), fill=shade, width=S)
    d.ellipse(sc([(nx - 5 * p.nose_w, ny - 2.5), (nx + 5 * p.nose_w, ny + 2.5)]), fill=shade)
    for side in (-1, 1):
        d.ellipse(sc([(nx + side * 2.5 * p.nose_w - 1.2, ny - 0.6), (nx + side * 2.5 * p.nose_w + 1.2, ny + 1.4)]),
                  fill=tuple(int(v * 0.55) for v in p.skin_rgb))
    # Mouth: a curved band, open by the expression.
    lips = (int(min(255, p.skin_rgb[0] * 0.75 + 50)), int(p.skin_rgb[1] * 0.55), int(p.skin_rgb[2] * 0.6))
    (lx, ly), (rx, ry) = pts[3], pts[4]
    mid_y = (ly + ry) / 2 + 2.5 * nz.smile
    xs = np.linspace(lx, rx, 16)
    curve = ly + (mid_y - ly) * (1 - ((xs - CX) / max(rx - CX, 1)) ** 2)
    upper = np.stack([xs, curve - p.lip * 0.6], 1)
    lower = np.stack([xs[::-1], curve[::-1] + p.lip + 3.0 * nz.mouth_open], 1)
    d.polygon(sc(np.concatenate([upper, lower])), fill=lips)
    if nz.mouth_open > 0.2:
        d.line(sc(np.stack([xs, curve + 0.5], 1)), fill=(60, 20, 20), width=int(S * 1.5 * nz.mouth_open))
    # A mole is part of identity.
    if p.mole[2] > 0.5:
        mx, my = CX + p.mole[0], CY + p.mole[1]
        d.ellipse(sc([(mx - 1.2, my - 1.2), (mx + 1.2, my + 1.2)]), fill=tuple(int(v * 0.45) for v in p.skin_rgb))
    # Glasses sometimes.
    if nz.glasses:
        for x, y in pts[:2]:
            d.ellipse(sc([(x - 9, y - 7), (x + 9, y + 7)]), outline=(25, 25, 25), width=int(1.4 * S))
        d.line(sc([(pts[0, 0] + 9, pts[0, 1]), (pts[1, 0] - 9, pts[1, 1])]), fill=(25, 25, 25), width=int(1.4 * S))

    img = np.asarray(canvas, dtype=np.float32)
    # Directional lighting: a linear ramp across the image.
    yy, xx = np.mgrid[0:W, 0:W].astype(np.float32) / W - 0.5
    ramp = 1 + nz.light * (np.cos(nz.light_angle) * xx + np.sin(nz.light_angle) * yy) * 2
    img *= ramp[..., None]
    # Roll/scale/shift in the supersampled frame, then area-downsample to 112.
    m = _transform(nz)
    m_big = m.copy()
    m_big[:, 2] *= S
    img = cv2.warpAffine(img, m_big, (W, W), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    img = cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    r = rng_for(0, "noise", p.pid, nz.roll)
    img = img + r.normal(0, nz.noise, img.shape).astype(np.float32)
    out = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    ok, enc = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, nz.jpeg])
    out = cv2.imdecode(enc, cv2.IMREAD_COLOR)[..., ::-1]
    points = pts @ m[:, :2].T + m[:, 2]
    return np.ascontiguousarray(out), points.astype(np.float32)
