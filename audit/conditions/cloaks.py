"""Privacy cloaks computed on a surrogate model (torch backend), batched over people and images.

Budgets are L-infinity on the 0-255 scale. Universal methods (FI-UAP, OPOM) compute one
perturbation per person from M of their images: each step averages the loss gradient over the
person's images and moves the shared perturbation by ``alpha * sign(g)`` (with momentum
``G += g / mean|g|`` when asked), clipped to ``[-eps, eps]``. Losses are maximised on
L2-normalised features:

* ``fi-uap``: MSE between adversarial and clean features of the same image;
* ``opom-centre``: MSE to the person's mean clean feature;
* ``opom-affine``: MSE to the feature's projection on the affine hull of the person's clean
  features (closed form ``mu + U U^T (f - mu)``);
* ``opom-convex``: MSE to the projection on their convex hull (non-negative weights summing to
  one; a batched projected-gradient QP), the first 5 steps using the class centre.

Projections are treated as constants (no gradient through them). ``pgd`` is per image: each
image gets its own perturbation pushing its feature away from its clean feature.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

METHODS = ("pgd", "fi-uap", "opom-centre", "opom-affine", "opom-convex")
OBJECTIVE = "squared feature distance per image (maximised)"


class Ensemble:
    """Several surrogate models as one: the features are each model's L2-normalised features side by side,
    so the cloak objective (squared distance of normalised features) is the sum of every model's own
    objective, and one perturbation is optimised against all of them (ensemble transfer attack)."""

    def __init__(self, backends: list):
        self.backends = backends
        self.device = backends[0].device

    def embed_tensor(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.normalize(b.embed_tensor(x), dim=1) for b in self.backends], dim=1)


def _simplex_projection(v: torch.Tensor) -> torch.Tensor:
    """Project each row of v onto the probability simplex (sort-based, exact)."""
    u, _ = torch.sort(v, dim=1, descending=True)
    css = u.cumsum(1) - 1
    k = torch.arange(1, v.shape[1] + 1, device=v.device, dtype=v.dtype)
    cond = (u - css / k) > 0
    rho = cond.float().cumsum(1).argmax(1, keepdim=True)
    theta = css.gather(1, rho) / (rho + 1).to(v.dtype)
    return (v - theta).clamp(min=0)


def convex_projection(f: torch.Tensor, basis: torch.Tensor, iters: int = 50) -> torch.Tensor:
    """Batched projection of features f (P, M, D) onto the convex hull of basis (P, K, D)."""
    w = torch.full(basis.shape[:2], 1.0 / basis.shape[1], device=f.device).unsqueeze(1).repeat(1, f.shape[1], 1)
    gram = basis @ basis.transpose(1, 2)                      # (P, K, K)
    lip = torch.linalg.matrix_norm(gram, ord=2).clamp(min=1e-6).view(-1, 1, 1)
    fb = f @ basis.transpose(1, 2)                              # (P, M, K)
    for _ in range(iters):
        grad = w @ gram - fb
        w = _simplex_projection((w - grad / lip).reshape(-1, w.shape[-1])).view_as(w)
    return w @ basis


def affine_projection(f: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Batched projection of f (P, M, D) onto the affine hull of clean (P, K, D)."""
    mu = clean.mean(1, keepdim=True)
    centred = clean - mu
    u, s, vh = torch.linalg.svd(centred, full_matrices=False)   # rows of vh span the hull directions
    keep = (s > 1e-6 * s.max(dim=1, keepdim=True).values).unsqueeze(-1)
    basis = vh * keep
    return mu + ((f - mu) @ basis.transpose(1, 2)) @ basis


def make_cloaks(embed, images: np.ndarray, method: str, eps: float, steps: int, alpha: float = 1.0,
                momentum: bool = False, seed: int = 0, patience: int | None = None,
                record: dict | None = None) -> np.ndarray:
    """Perturbations for images (P, M, H, W, 3) uint8: (P, 3, H, W) universal, or (P, M, 3, H, W) for pgd.

    ``embed`` maps an (N, 3, H, W) float tensor on 0-255 to (N, D) features (differentiable).
    At most ``steps`` steps; with ``patience``, fewer once the objective (mean squared feature
    distance per image, maximised) has not grown by 0.5% for that many steps. ``record``, when
    given, receives the convergence record (:meth:`audit.probes.convergence.Plateau.record`).
    """
    from audit.probes.convergence import Plateau

    plateau = Plateau(cap=max(steps, 1), patience=patience or max(steps, 1))
    if method not in METHODS:
        raise ValueError(f"unknown cloak method {method!r}; known: {', '.join(METHODS)}")
    p, m = images.shape[:2]
    device = next(iter([getattr(embed, "device", "cpu")]))
    x = torch.from_numpy(images).float().permute(0, 1, 4, 2, 3).to(device)        # (P, M, 3, H, W)
    flat = x.reshape(p * m, *x.shape[2:])
    with torch.no_grad():
        clean = F.normalize(embed(flat), dim=1).view(p, m, -1)
    g = torch.Generator().manual_seed(seed % (2**63))
    shape = (p, m, *x.shape[2:]) if method == "pgd" else (p, 1, *x.shape[2:])
    eta = ((torch.rand(shape, generator=g) * 2 - 1) * eps).to(device)
    velocity = torch.zeros_like(eta)
    if eps == 0 or steps == 0:
        if record is not None:
            record.update({**plateau.record(), "steps": 0, "stopped_by": "no budget", "measure": OBJECTIVE})
        return eta[:, 0].cpu().numpy() if method != "pgd" else eta.cpu().numpy()
    for step in range(steps):
        adv = (x + eta).clamp(0, 255).detach().requires_grad_(True)
        f = F.normalize(embed(adv.reshape(p * m, *x.shape[2:])), dim=1).view(p, m, -1)
        if method in ("pgd", "fi-uap"):
            target = clean
        elif method == "opom-centre" or (method == "opom-convex" and step < 5):
            target = clean.mean(1, keepdim=True).expand_as(f)
        elif method == "opom-affine":
            target = affine_projection(f.detach(), clean)
        else:
            target = convex_projection(f.detach(), clean)
        loss = ((f - target.detach()) ** 2).sum()
        grad, = torch.autograd.grad(loss, adv)
        stop = plateau.step(-loss.item() / (p * m))  # the plateau rule minimises: track the negated objective
        if method != "pgd":
            grad = grad.mean(1, keepdim=True)                     # one perturbation per person
        if momentum:
            velocity = velocity + grad / grad.abs().mean(dim=tuple(range(2, grad.ndim)), keepdim=True).clamp(min=1e-12)
            grad = velocity
        eta = (eta + alpha * grad.sign()).clamp(-eps, eps)
        if stop:
            break
    if record is not None:
        rec = plateau.record()
        record.update({**rec, "curve": [-v for v in rec["curve"]], "measure": OBJECTIVE})
    eta = eta.detach()
    return eta[:, 0].cpu().numpy() if method != "pgd" else eta.cpu().numpy()


def apply_cloak(images: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Add perturbations (3, H, W) per image (broadcast) and round back to uint8."""
    out = images.astype(np.float32) + np.moveaxis(eta, -3, -1)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
