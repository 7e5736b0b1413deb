"""Conditions: deterministic, seeded transforms of aligned faces; imports data, synth, store and the bottom floor.

Names: ``clean``, ``mask:surgical|cloth|n95``, ``sunglasses``, ``patch:<ratio>``,
``freqmix:<k>``; parts compose with ``+`` (``mask:surgical+patch:0.2``) and apply left to
right. ``mask:<type>@template`` draws the same mask on everyone: its outline comes from the
mean (ArcFace template) landmarks instead of each person's own, so the mask's *shape* cannot
carry anything about the person. Beside the ordinary mask it separates two explanations when a
mask raises leakage: the face it leaves visible, or the shape of the mask itself.

Each image's randomness comes from (run seed, condition part, manifest row), so the same image
gets the same mask in every run and every probe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit.conditions.masks import MASK_TYPES, apply_mask, apply_sunglasses
from audit.conditions.obfuscation import freq_mix, patch_mask
from audit.data.images import template_for
from audit.errors import ConfigError
from audit.seeding import rng_for

KNOWN = ("clean", *(f"mask:{m}" for m in MASK_TYPES), "mask:<type>@template", "sunglasses", "patch:<ratio 0-1>",
         "freqmix:<k 2-6>")
TEMPLATE = "@template"
UNKNOWN = "unknown condition {part!r} in {name!r}; known conditions: {known}"


@dataclass(frozen=True)
class Part:
    kind: str
    arg: str = ""


def parse(name: str) -> list[Part]:
    """Parse and validate a condition name; raise :class:`ConfigError` naming the bad part."""
    parts = []
    for raw in name.strip().split("+"):
        kind, _, arg = raw.strip().partition(":")
        if kind == "clean" and not arg:
            continue
        if kind == "mask" and arg.removesuffix(TEMPLATE) in MASK_TYPES:
            pass
        elif kind == "sunglasses" and not arg:
            pass
        elif kind == "patch":
            try:
                ok = 0 < float(arg) < 1
            except ValueError:
                ok = False
            if not ok:
                raise ConfigError(f"condition {name!r}: patch ratio must be a number between 0 and 1, got {arg!r}")
        elif kind == "freqmix":
            if not arg.isdigit() or not 2 <= int(arg) <= 6:
                raise ConfigError(f"condition {name!r}: freqmix needs k between 2 and 6, got {arg!r}")
        else:
            raise ConfigError(UNKNOWN.format(part=raw, name=name, known=", ".join(KNOWN)))
        parts.append(Part(kind, arg))
    return parts


def is_occlusion(name: str) -> bool:
    """True for conditions that cover part of the face (masks, sunglasses, patches)."""
    return any(p.kind in ("mask", "sunglasses", "patch") for p in parse(name))


def mixes(name: str) -> bool:
    """True for conditions that mix several faces into one (``freqmix``): what they make of a face depends on
    which faces are processed with it (the chunk, :data:`audit.data.loaders.CHUNK`)."""
    return any(p.kind == "freqmix" for p in parse(name))


def apply(name: str, images: np.ndarray, points: np.ndarray, point_names: tuple[str, ...], rows: np.ndarray,
          seed: int) -> np.ndarray:
    """Apply condition ``name`` to aligned faces (N, H, W, 3) uint8; returns new images."""
    parts = parse(name)
    out = images
    for part in parts:
        key = f"{part.kind}:{part.arg}"
        res = np.empty_like(out)
        for i, row in enumerate(rows):
            rng = rng_for(seed, "condition", key, int(row))
            if part.kind == "mask" and part.arg.endswith(TEMPLATE):
                res[i] = apply_mask(out[i], template_for(out.shape[1:3]), point_names[:5],
                                    part.arg.removesuffix(TEMPLATE), rng)
            elif part.kind == "mask":
                res[i] = apply_mask(out[i], points[i], point_names, part.arg, rng)
            elif part.kind == "sunglasses":
                res[i] = apply_sunglasses(out[i], points[i], rng)
            elif part.kind == "patch":
                res[i] = patch_mask(out[i], float(part.arg), rng)
            elif part.kind == "freqmix":
                res[i] = freq_mix(out, int(part.arg), rng, i)
        out = res
    return out if parts else images.copy()
