"""Synthetic people: identity parameters and attributes, drawn from a seeded generator.

A person is a frozen bag of numbers. ``sex``, ``skin_tone`` and ``age`` are planted
attributes that change how the face is drawn; ``control`` is random and never drawn, so
every leakage probe must find chance for it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from audit.seeding import rng_for

SKIN_TONES = ("light", "medium", "dark")
SKIN_RGB = {  # base colours per group; a person jitters around theirs
    "light": (232, 196, 170),
    "medium": (192, 140, 100),
    "dark": (110, 72, 50),
}
HAIR_RGB = ((30, 22, 18), (70, 45, 25), (120, 80, 40), (185, 150, 90), (140, 60, 30))
IRIS_RGB = ((60, 40, 25), (40, 80, 120), (70, 110, 60), (30, 25, 20))


@dataclass(frozen=True)
class Person:
    """Identity parameters (unitless factors around 1, or offsets in 112-px units) and attributes."""

    pid: str
    sex: str
    skin_tone: str
    age: int
    control: str
    skin_rgb: tuple[float, float, float]
    face_w: float       # half-width of the face, px
    face_up: float      # forehead height above face centre, px
    jaw: float          # 0..1 how square the jaw is (wider for male)
    eye_dx: float       # half distance between eyes, px
    eye_dy: float       # vertical offset of the eyes
    eye_size: float
    iris: int
    brow_thick: float
    brow_tilt: float
    brow_gap: float
    nose_len: float
    nose_w: float
    mouth_w: float
    mouth_dy: float
    lip: float
    hair_style: int     # 0 short, 1 medium, 2 long, 3 receding
    hair_rgb: tuple[float, float, float]
    hair_line: float
    beard: float        # 0 none .. 1 full (male only)
    ear: float
    mole: tuple[float, float, float]  # x, y offset and presence (0/1)

    def to_dict(self) -> dict:
        return asdict(self)


def make_person(seed: int, split: str, index: int) -> Person:
    """Person ``index`` of ``split`` (``eval``/``train``...); different splits share nobody."""
    r = rng_for(seed, "person", split, index)
    # Balanced by construction: each block of 6 people holds every (sex, skin tone) pair once,
    # and each block of 2 both control values, in a seeded order.
    cell = rng_for(seed, "cells", split, index // 6).permutation(6)[index % 6]
    sex, tone = ("female", "male")[cell // 3], SKIN_TONES[cell % 3]
    control = ("a", "b")[rng_for(seed, "control", split, index // 2).permutation(2)[index % 2]]
    age = int(r.integers(18, 81))
    male = sex == "male"
    base = np.array(SKIN_RGB[tone], float)
    skin = tuple(np.clip(base * r.uniform(0.93, 1.07) + r.normal(0, 5, 3), 0, 255).round(1))
    if male:
        style = int(r.choice(4, p=[0.55, 0.2, 0.05, 0.2]))
    else:
        style = int(r.choice(4, p=[0.15, 0.35, 0.5, 0.0]))
    hair = np.array(HAIR_RGB[int(r.integers(len(HAIR_RGB)))], float) * r.uniform(0.85, 1.15)
    return Person(
        pid=f"{split}{index:05d}", sex=sex, skin_tone=tone, age=age,
        control=control,
        skin_rgb=tuple(float(v) for v in skin),
        face_w=float(r.uniform(34, 42) + (2.0 if male else 0.0)),
        face_up=float(r.uniform(44, 54)),
        jaw=float(np.clip(r.normal(0.62 if male else 0.32, 0.1), 0.05, 0.95)),
        eye_dx=float(r.uniform(15.5, 20)), eye_dy=float(r.uniform(-3, 3)), eye_size=float(r.uniform(0.8, 1.25)),
        iris=int(r.integers(len(IRIS_RGB))),
        brow_thick=float(r.uniform(2.2, 3.4) if male else r.uniform(1.1, 2.0)),
        brow_tilt=float(r.uniform(-0.25, 0.25)), brow_gap=float(r.uniform(5, 9)),
        nose_len=float(r.uniform(-4, 4)), nose_w=float(r.uniform(0.75, 1.3)),
        mouth_w=float(r.uniform(11, 17)), mouth_dy=float(r.uniform(-3, 3)), lip=float(r.uniform(1.5, 3.5)),
        hair_style=style, hair_rgb=tuple(float(v) for v in np.clip(hair, 0, 255)),
        hair_line=float(r.uniform(-4, 6)),
        beard=float(r.uniform(0.4, 1.0)) if male and r.random() < 0.45 else 0.0,
        ear=float(r.uniform(0.8, 1.2)),
        mole=(float(r.uniform(-25, 25)), float(r.uniform(-5, 25)), float(r.random() < 0.35)),
    )
