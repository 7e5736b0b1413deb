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

Transfer attacks (a surrogate other than the audited model) follow the OPOM recipe: momentum and
*input diversity* (Xie et al., 2019): at each step, with probability ``diversity``, the cloaked
images are shrunk to a random size between 90% and 100% and padded back at a random offset
before the surrogate sees them, so the cloak does not overfit the surrogate's exact pixels.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

METHODS = ("pgd", "fi-uap", "opom-centre", "opom-affine", "opom-convex")
CONVEX_WARMUP = 5
"""Steps ``opom-convex`` takes on the centre's objective before its own (the hull's projection needs features
that have left the clean ones)."""
BEST = "best"
"""The cloak probe's best cloak (``cloak:best@<eps>``), a method chosen on other persons' results
(:func:`audit.probes.cloak.best_cloak`), stored beside the methods' own rows."""
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


def diverse(x: torch.Tensor, gen: torch.Generator, prob: float) -> torch.Tensor:
    """Input diversity: with probability ``prob``, shrink the batch (N, 3, H, W) to a random size in
    [0.9 H, H] and zero-pad it back to H x W at a random offset (differentiable; one draw per step)."""
    if prob <= 0 or float(torch.rand(1, generator=gen)) >= prob:
        return x
    h, w = x.shape[-2:]
    size = int(torch.randint(int(0.9 * h), h + 1, (1,), generator=gen))
    if size == h:
        return x
    small = F.interpolate(x, size=(size, round(size * w / h)), mode="bilinear", align_corners=False)
    top = int(torch.randint(0, h - size + 1, (1,), generator=gen))
    left = int(torch.randint(0, w - small.shape[-1] + 1, (1,), generator=gen))
    return F.pad(small, (left, w - small.shape[-1] - left, top, h - size - top))


def embed_device(embed) -> str:
    """The device an ``embed`` callable computes on: its own ``device``, or its backend's for a bound method
    (``backend.embed_tensor``, what the cloak probe passes; a bound method does not carry its object's attributes,
    so the images stayed on the CPU while the model ran on CUDA)."""
    return str(getattr(embed, "device", None) or getattr(getattr(embed, "__self__", None), "device", None) or "cpu")


def make_cloaks(embed, images: np.ndarray, method: str, eps: float, steps: int, alpha: float = 1.0,
                momentum: bool = False, seed: int = 0, patience: int | None = None,
                record: dict | None = None, diversity: float = 0.0) -> np.ndarray:
    """Perturbations for images (P, M, H, W, 3) uint8: (P, 3, H, W) universal, or (P, M, 3, H, W) for pgd.

    ``embed`` maps an (N, 3, H, W) float tensor on 0-255 to (N, D) features (differentiable).
    At most ``steps`` steps; with ``patience``, fewer once the objective (mean squared feature
    distance per image, maximised) has not grown by 0.5% for that many steps. ``record``, when
    given, receives the convergence record (:meth:`audit.convergence.Plateau.record`).
    ``diversity`` is the probability of input diversity per step (0: off; transfer attacks use 0.5).

    Each person (each image, for ``pgd``) keeps the perturbation with the highest objective seen, not
    the last one: sign steps of a fixed size oscillate near the optimum, and the last iterate can be
    worse than one a few steps before it. With input diversity the gradient comes from a randomly
    resized copy, but the objective that ranks iterates and decides the plateau is measured on the
    cloaked images themselves (one more forward pass per step): a random resize makes it too noisy
    to tell a plateau.
    """
    from audit.convergence import Plateau

    # opom-convex takes its first steps on the centre's objective, which is larger than its own (the centre lies in
    # the hull): iterates are ranked, and the plateau judged, on its own objective only, from the step it starts.
    warm = min(CONVEX_WARMUP, steps) if method == "opom-convex" else 0
    plateau = Plateau(cap=max(steps - warm, 1), patience=patience or max(steps, 1))
    warm_curve: list[float] = []
    if method not in METHODS:
        raise ValueError(f"unknown cloak method {method!r}; known: {', '.join(METHODS)}")
    p, m = images.shape[:2]
    device = embed_device(embed)
    x = torch.from_numpy(images).float().permute(0, 1, 4, 2, 3).to(device)        # (P, M, 3, H, W)
    flat = x.reshape(p * m, *x.shape[2:])
    with torch.no_grad():
        clean = F.normalize(embed(flat), dim=1).view(p, m, -1)
    g = torch.Generator().manual_seed(seed % (2**63))
    shape = (p, m, *x.shape[2:]) if method == "pgd" else (p, 1, *x.shape[2:])
    eta = ((torch.rand(shape, generator=g) * 2 - 1) * eps).to(device)
    velocity = torch.zeros_like(eta)
    best_eta, best = eta.clone(), None
    if eps == 0 or steps == 0:
        if record is not None:
            record.update({**plateau.record(), "steps": 0, "stopped_by": "no budget", "measure": OBJECTIVE,
                           "momentum": momentum, "diversity": diversity})
        return eta[:, 0].cpu().numpy() if method != "pgd" else eta.cpu().numpy()

    def per_image(f: torch.Tensor, step: int) -> torch.Tensor:
        """The method's objective for each image (P, M): squared distance to its target feature."""
        if method in ("pgd", "fi-uap"):
            target = clean
        elif method == "opom-centre" or (method == "opom-convex" and step < warm):
            target = clean.mean(1, keepdim=True).expand_as(f)
        elif method == "opom-affine":
            target = affine_projection(f.detach(), clean)
        else:
            target = convex_projection(f.detach(), clean)
        return ((f - target.detach()) ** 2).sum(-1)

    for step in range(steps):
        adv = (x + eta).clamp(0, 255).detach().requires_grad_(True)
        batch = adv.reshape(p * m, *x.shape[2:])
        seen = diverse(batch, g, diversity)
        objective = per_image(F.normalize(embed(seen), dim=1).view(p, m, -1), step)
        grad, = torch.autograd.grad(objective.sum(), adv)
        if seen is not batch:  # the objective of the perturbation itself, not of one random resize of it
            with torch.no_grad():
                objective = per_image(F.normalize(embed(batch), dim=1).view(p, m, -1), step)
        objective = objective.detach()
        if step < warm:
            warm_curve.append(-objective.mean().item())
            stop = False
        else:  # the plateau rule minimises: track the negated objective
            stop = plateau.step(-objective.mean().item())
        # This step's objective belongs to the current eta: each person (image, for pgd) keeps their best so far.
        score = objective if method == "pgd" else objective.mean(1, keepdim=True)
        better = torch.ones_like(score, dtype=torch.bool) if best is None or step == warm else score > best
        best = score if best is None else torch.where(better, score, best)
        best_eta = torch.where(better.view(*better.shape, 1, 1, 1), eta, best_eta)
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
        if not plateau.curve:  # a cap within the warm-up
            rec["stopped_by"] = "cap"
        record.update({**rec, "steps": warm + len(plateau.curve), "cap": max(steps, 1),
                       "curve": [-v for v in warm_curve + rec["curve"]], "measure": OBJECTIVE, "momentum": momentum,
                       "diversity": diversity, **({"warmup_steps": warm} if warm else {})})
    return best_eta[:, 0].cpu().numpy() if method != "pgd" else best_eta.cpu().numpy()


def apply_cloak(images: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Add perturbations (3, H, W) per image (broadcast) and round back to uint8."""
    out = images.astype(np.float32) + np.moveaxis(eta, -3, -1)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
