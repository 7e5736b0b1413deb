"""Obfuscations that hide part of the signal: random patch masking and frequency-domain mixup.

Frequency mixup follows the adaptive hybrid masking idea: faces are mixed with ``k - 1``
other faces in the 8x8 block-DCT domain of YCbCr, with separate Dirichlet weights for each
of the 64 frequencies (so it is not a pixel-space MixUp). More images = more privacy.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.fft import dctn, idctn

PATCH = 8
BLOCK = 8


def patch_mask(img: np.ndarray, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """Grey out a random ``ratio`` of the 8x8 patches."""
    h, w = img.shape[:2]
    gh, gw = -(-h // PATCH), -(-w // PATCH)
    n = int(round(ratio * gh * gw))
    chosen = rng.choice(gh * gw, size=n, replace=False)
    out = img.copy()
    for c in chosen:
        y, x = divmod(int(c), gw)
        out[y * PATCH:(y + 1) * PATCH, x * PATCH:(x + 1) * PATCH] = 127
    return out


def _block_dct(ycc: np.ndarray) -> np.ndarray:
    h, w, c = ycc.shape
    blocks = ycc.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK, c)
    return dctn(blocks, axes=(1, 3), norm="ortho")


def _block_idct(coef: np.ndarray) -> np.ndarray:
    blocks = idctn(coef, axes=(1, 3), norm="ortho")
    gh, b, gw, _, c = blocks.shape
    return blocks.reshape(gh * b, gw * b, c)


def freq_mix(images: np.ndarray, k: int, rng: np.random.Generator, index: int) -> np.ndarray:
    """Mix face ``index`` with ``k - 1`` others drawn from ``images`` (block DCT, YCbCr)."""
    if k < 2:
        return images[index].copy()
    n = len(images)
    others = rng.choice([j for j in range(n) if j != index], size=min(k - 1, n - 1), replace=False)
    members = [index, *others.tolist()]
    h, w = images.shape[1:3]
    hh, ww = h - h % BLOCK, w - w % BLOCK
    coefs = np.stack([_block_dct(cv2.cvtColor(images[j][:hh, :ww], cv2.COLOR_RGB2YCrCb).astype(np.float32))
                      for j in members])
    weights = rng.dirichlet(np.ones(len(members)), size=(BLOCK, BLOCK))  # (8, 8, m)
    weights = np.sort(weights, axis=-1)[..., ::-1]  # the face itself keeps the largest share
    wv = weights.transpose(2, 0, 1)[:, None, :, None, :, None]  # (m, 1, 8, 1, 8, 1)
    mixed = (coefs * wv).sum(0)
    ycc = np.clip(_block_idct(mixed), 0, 255).astype(np.uint8)
    out = images[index].copy()
    out[:hh, :ww] = cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)
    return out
