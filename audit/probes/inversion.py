"""Inversion probe: can a face that passes as the person be rebuilt from their template?

Threat models (ISO/IEC 24745 irreversibility):

* **black-box** - the attacker can query the target model. They embed an auxiliary set of
  *other* people (a subject-disjoint half of the dataset) and train a decoder from embedding to
  image at the model's input size (pixel loss, plus an identity loss through an attacker-side model when one is
  given). Victims are then rebuilt from their embeddings alone.
* **white-box** - the attacker has the weights: starting from the decoder output, the image is
  optimised through the torch backend to maximise cosine similarity with the victim's template,
  with a total-variation prior. Skipped, with the reason, when the graph did not convert.
* **query** - the attacker has the template and the matcher's comparison interface, which answers
  with a similarity score only: starting from the decoder output, the image is refined by natural
  evolution strategies from those scores (:mod:`audit.probes.query`), every image submitted counted
  as a query; the success curve against queries spent is stored (``query_attack.json``).
* **random-face** - control: another person's real face submitted as is; passes at about the FMR.

White-box and query attack the same seeded subset of victims.

Success attack rate (SAR) type I: the reconstruction is accepted against its own source image at
the system threshold; type II: against the person's other images. Thresholds come from clean
impostor scores of the victims at FMR 1e-3 and 1e-2; with an independent evaluator model its own
thresholds are used. Rank-1: the reconstruction's best match among every original image is the
right person. SSIM and PSNR compare reconstructions with their sources. The same is done on
templates of masked faces (every mask condition of the run), by the black-box decoder (tuned on the auxiliary people's
templates under that mask) and the white-box attacker (the query attacker attacks clean templates only); their
reconstructions are judged against the clean source image, the
photo a system would have enrolled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from audit.data.split import subject_split
from audit.errors import ConfigError
from audit.metrics import verification as ver
from audit.metrics.settings import operating_point
from audit.metrics.stats import SubjectBootstrap, mask_positions, pairs_within
from audit.models.backends import resize
from audit.probes.base import (Artifact, MetricRecord, ProbeContext, ProbeResult, kept_impostors, outcomes_artifact,
                               register)
from audit.probes.query import LR, POP, RES, SIGMA, ScoreOracle, query_attack
from audit.seeding import derive_seed

RISK, NEUTRAL = "higher_is_riskier", "neutral"
SETTINGS = {  # epochs / wb_steps: caps (training stops earlier on a plateau); aux: most auxiliary images for the
    # decoder; wb_victims: most victims attacked white-box and through queries (the query budget per victim and the
    # synthetic faces are the run config's inversion_queries / synthetic_faces, audit/config.py PRESETS)
    "quick": {"epochs": 12, "wb_steps": 50, "aux": 600, "wb_victims": 48},
    "standard": {"epochs": 60, "wb_steps": 150, "aux": 5000, "wb_victims": 500},
    "thorough": {"epochs": 150, "wb_steps": 300, "aux": 100000, "wb_victims": 100000}}
THREAT_MODELS = {  # attack -> what the attacker has (the report names each, with its query cost)
    "white-box": "the model file (weights and gradients) and the template",
    "query": "a stolen template and the matcher's comparison interface (score only), a number of queries each",
    "black-box": "a stolen template and a decoder trained beforehand on their own images, embedded through the "
                 "system (no query per victim)",
    "random-face": "control: another person's real face submitted as is (should pass at about the FMR)"}
FMRS = (1e-3, 1e-2)
PATIENCE = {"decoder": 5, "white_box": 5}
"""Epochs (decoder) and steps (white-box) without a 0.5% improvement of the attack's own objective
after which it counts as converged (:class:`audit.probes.convergence.Plateau`). The decoder's
measure comes from a few dozen held-out images and is noisy: with a patience of 3 a pixel-only
decoder on fr-baseline stopped at epoch 18 at SAR type I 0.59 while its curve was still falling."""


class Decoder(nn.Module):
    """Embedding -> ``size`` (h, w) RGB in [0, 255], the audited model's input size (the faces it is trained on):
    a linear stem, three sub-pixel (pixel-shuffle) upsampling conv blocks to 56 px, and a bilinear resize to
    ``size`` (small enough to train in well under a minute on two CPU cores; pixel shuffle costs a third of
    nearest-neighbour upsampling followed by a convolution). Until 0.11.0 the output was always 112 x 112, and the
    probe failed on a model of any other input size (a review of the probes)."""

    def __init__(self, dim: int, size: tuple[int, int] = (112, 112)):
        super().__init__()
        self.stem = nn.Linear(dim, 64 * 7 * 7)
        blocks = []
        for cin, cout in ((64, 48), (48, 32), (32, 16)):
            blocks += [nn.Conv2d(cin, cout * 4, 3, padding=1), nn.PixelShuffle(2), nn.BatchNorm2d(cout),
                       nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*blocks, nn.Conv2d(16, 3, 3, padding=1),
                                  nn.Upsample(size=tuple(size), mode="bilinear"))  # 56 -> 112: a scale of 2 exactly

    def forward(self, z):
        x = self.stem(z).view(len(z), 64, 7, 7)
        # the output squashing in float32 even under bfloat16 autocast: bfloat16 holds 0-255 pixels to a step of 1-2
        return (torch.tanh(self.body(x).float()) + 1) * 127.5


def synthetic_faces(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` faces of new synthetic people (four each) from faceaudit's own generator, and their person ids;
    a split of their own (``decoder``), so never the sample world's evaluation or training people."""
    from audit.synth import Recipe, generate_arrays

    if not n:
        return np.zeros((0, 112, 112, 3), np.uint8), np.zeros(0, dtype=object)
    images, rows = generate_arrays(Recipe(people=-(-n // 4), images=4, seed=seed % 2**31, split="decoder"), workers=1)
    return images[:n], ("synthetic:" + rows["subject"].astype(str)).to_numpy(object)[:n]


def decoder_pairs(emb: np.ndarray, images: np.ndarray, subjects: np.ndarray, n_synthetic: int, seed: int,
                  embed) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The decoder's training pairs: the auxiliary people's (embedding, face) plus ``n_synthetic`` faces of new
    people (:func:`synthetic_faces`, resized to the auxiliary faces' size as the model's inputs are) embedded through
    ``embed`` (the audited model); returns (embeddings, faces,
    persons, train_only), ``train_only`` marking the synthetic pairs, which are never held out (the decoder is
    judged on real people only, so it cannot look good by fitting the synthetic style)."""
    syn_images, syn_subjects = synthetic_faces(n_synthetic, seed)
    train_only = np.r_[np.zeros(len(emb), bool), np.ones(len(syn_images), bool)]
    if not len(syn_images):
        return emb, images, np.asarray(subjects), train_only
    syn_images = resize(syn_images, images.shape[1:3])
    return (np.concatenate([emb, embed(syn_images)]), np.concatenate([images, syn_images]),
            np.concatenate([subjects, syn_subjects]), train_only)


def fit_decoder(emb: np.ndarray, images: np.ndarray, subjects: np.ndarray, n_synthetic: int, epochs: int,
                seed: int, synthetic_seed: int, embed, **train) -> tuple[Decoder, dict]:
    """The black-box attacker's decoder from the auxiliary people's (embedding, face) pairs and, with
    ``n_synthetic`` > 0, the same plus that many synthetic faces embedded through ``embed`` (the audited model).

    Synthetic faces are kept only where they help on real people: both decoders are trained with the same seed
    (so the same tenth of the real persons is held out) and the one whose reconstructions of the held-out real
    persons the model finds closer to their templates is the attacker's (on a real ArcFace with raw LFW photos,
    2,000 synthetic faces made the decoder worse: benchmarks/README.md). The statistics are the chosen one's,
    with ``real_pairs``, ``synthetic_pairs`` (of the chosen), ``queries`` (every face embedded to train either, and
    every held-out reconstruction submitted to judge either, epoch by epoch),
    ``synthetic_offered`` and ``held_out_distance`` per candidate. ``train``: :func:`train_decoder`'s options."""
    candidates = {name: decoder_pairs(emb, images, subjects, n, synthetic_seed, embed)
                  for name, n in (("real", 0), ("real+synthetic", n_synthetic)) if name == "real" or n > 0}
    fitted = {}
    for name, (e, x, who, synthetic) in candidates.items():
        dec, stats = train_decoder(e, x, epochs, seed, subjects=who, judge=embed, train_only=synthetic, **train)
        stats["synthetic_pairs"] = int(synthetic.sum())
        fitted[name] = (dec, stats)
    distance = {name: float(st["kept_distance"]) for name, (_, st) in fitted.items()}  # of the epochs kept
    chosen = min(distance, key=lambda n: (distance[n], n != "real"))  # a tie keeps the real-only decoder
    dec, stats = fitted[chosen]
    stats.update(real_pairs=int(len(emb)), chosen=chosen, synthetic_offered=int(n_synthetic),
                 held_out_distance={n: round(d, 6) for n, d in distance.items()},
                 judging_queries=sum(st["judge_queries"] for _, st in fitted.values()))
    # the faces embedded to train either candidate, and every reconstruction submitted to judge one
    stats["queries"] = max(len(pairs[0]) for pairs in candidates.values()) + stats["judging_queries"]
    return dec, stats


def train_decoder(emb: np.ndarray, images: np.ndarray, epochs: int, seed: int, device: str = "cpu",
                  identity_model=None, batch: int = 32, lr: float = 4e-3, subjects: np.ndarray | None = None,
                  patience: int = PATIENCE["decoder"], judge=None, precision: str = "float32",
                  train_only: np.ndarray | None = None, init: Decoder | None = None,
                  judged_against: np.ndarray | None = None) -> tuple[Decoder, dict]:
    """Fit a decoder on (embedding, image) pairs until it stops improving on held-out pairs (at most
    ``epochs`` epochs); returns it as it was at the epoch that did best on them (``kept_epoch``) and training
    statistics (with the convergence curve).

    The held-out pairs are a tenth of the persons (``subjects``; of the images when not given), never one of
    the pairs marked ``train_only`` (synthetic faces: the decoder is judged on real people only); the decoder
    trains on the rest. The loss is L1 in pixels plus, with ``identity_model`` (the
    attacker's own FR model), half the cosine distance between the attacker-model embeddings of the
    reconstruction and of the real image. Progress is judged by what the attack is for: with ``judge``
    (images -> embeddings: the queried target model, which the black-box attacker may query), the mean
    cosine distance between the held-out reconstructions' embeddings and the templates they were
    rebuilt from; otherwise the held-out training loss. (Pixel loss levels off long before the
    reconstructions stop getting more acceptable to the model.) With ``precision`` bfloat16 the training
    steps run under autocast (mixed precision: weights, optimiser state, losses and the output pixels in
    float32); the held-out judgement and :func:`decode` are float32.

    ``init``: a decoder to start from (fine-tuning; it is judged on the held-out persons first, and kept, as epoch 0,
    when no epoch does better). ``judged_against``: the templates the held-out reconstructions are judged against
    (default ``emb``): a decoder of masked templates is judged by how close its faces come to the clean ones.

    Adam at ``lr`` 4e-3 on batches of 32: on the four sample FR models (quick preset, 600 auxiliary
    images) it reaches by epoch 11-12 the held-out distance that the former 2e-3 on batches of 64 reached
    by epoch 20, and its SARs were at least as high in 31 of 42 paired comparisons (benchmarks/README.md,
    "Decoder recipe"). A one-cycle schedule over 10-12 epochs was clearly weaker and is not used.
    """
    import time

    from audit.probes.convergence import Plateau

    torch.manual_seed(seed % (2**63))
    rng = np.random.default_rng(seed % (2**63))
    groups = np.asarray(subjects) if subjects is not None else np.arange(len(emb))
    ids = np.unique(groups if train_only is None else groups[~train_only])
    held = np.isin(groups, rng.choice(ids, max(1, len(ids) // 10), replace=False)) if len(ids) >= 10 \
        else np.zeros(len(emb), bool)
    z_all = torch.from_numpy(ver.l2_normalise(emb).astype(np.float32)).to(device)
    x_all = torch.from_numpy(images).permute(0, 3, 1, 2).float().to(device)
    refs = None
    if identity_model is not None:  # the real images' attacker-side embeddings do not change: computed once
        with torch.no_grad():
            refs = torch.cat([F.normalize(identity_model.embed_tensor(x_all[s:s + 256]), dim=1)
                              for s in range(0, len(x_all), 256)])
    # what held-out reconstructions are judged against (judge given)
    held_templates = ver.l2_normalise((emb if judged_against is None else judged_against)[held])
    train_idx = torch.from_numpy(np.flatnonzero(~held)).to(device)
    val_idx = torch.from_numpy(np.flatnonzero(held)).to(device)

    def objective(idx, out):
        loss = F.l1_loss(out, x_all[idx]) / 127.5
        if refs is not None:
            feat = F.normalize(identity_model.embed_tensor(out), dim=1)
            loss = loss + 0.5 * (1 - (feat * refs[idx]).sum(1)).mean()
        return loss

    # channels-last: the decoder's convolutions (forward and backward) run about a quarter faster on CPU
    dec = Decoder(z_all.shape[1], images.shape[1:3]).to(device, memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(seed % (2**63))
    plateau = Plateau(cap=epochs, patience=patience if len(val_idx) else epochs)
    t0, seen = time.perf_counter(), 0
    best = (float("inf"), 0, None)  # (held-out measure, epoch index, the decoder's weights then)

    def held_out() -> float:
        dec.eval()
        with torch.no_grad():
            if not len(val_idx):
                return 0.0
            if judge is not None:
                recon = decode(dec, emb[held], device)
                return float(1 - np.mean(np.sum(ver.l2_normalise(judge(recon)) * held_templates, 1)))
            return float(sum(objective(val_idx[s:s + 256], dec(z_all[val_idx[s:s + 256]])) * len(val_idx[s:s + 256])
                             for s in range(0, len(val_idx), 256)) / max(len(val_idx), 1))

    judged = 0  # held-out judgements made (each submits the held-out reconstructions to ``judge``)
    if init is not None:
        dec.load_state_dict(init.state_dict())
        if len(val_idx):
            best, judged = (held_out(), -1, {k: v.detach().clone() for k, v in dec.state_dict().items()}), 1
    opt = torch.optim.Adam(dec.parameters(), lr=lr)
    while True:
        dec.train()
        order = train_idx[torch.randperm(len(train_idx), generator=g).to(device)]
        for s in range(0, len(order), batch):
            idx = order[s:s + batch]
            with torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bfloat16"):
                out = dec(z_all[idx])
            loss = objective(idx, out)
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(idx)
        val = held_out()
        if len(val_idx) and val < best[0]:  # early stopping keeps the epoch that did best on the held-out persons
            best = (val, len(plateau.curve), {k: v.detach().clone() for k, v in dec.state_dict().items()})
        if plateau.step(val):
            break
    if best[2] is not None:
        dec.load_state_dict(best[2])
    return dec, {"kept_epoch": best[1] + 1 if best[2] is not None else len(plateau.curve),
                 "kept_distance": best[0] if best[2] is not None else plateau.curve[-1],
                 "images_per_s": seen / (time.perf_counter() - t0), "precision": precision,
                 "pairs": int(len(train_idx)),
                 # each epoch's held-out reconstructions are submitted to the model: queries of it too
                 "judge_queries": int((len(plateau.curve) + judged) * held.sum()) if judge is not None and len(val_idx)
                 else 0,
                 "held_out_pairs": int(len(val_idx)), "epochs": len(plateau.curve),
                 "held_out_persons": sorted(map(str, np.unique(groups[held]))),
                 "convergence": {**plateau.record(), "measure": "held-out cosine distance to the template"
                                 if judge is not None else "held-out decoder loss"}}


def decode(dec: Decoder, emb: np.ndarray, device: str = "cpu") -> np.ndarray:
    with torch.no_grad():
        z = torch.from_numpy(ver.l2_normalise(emb).astype(np.float32)).to(device)
        out = torch.cat([dec(z[s:s + 256]) for s in range(0, len(z), 256)])
    return out.permute(0, 2, 3, 1).clamp(0, 255).round().byte().cpu().numpy()


def white_box(backend, start: np.ndarray, target: np.ndarray, steps: int, tv: float = 0.02,
              patience: int = PATIENCE["white_box"]) -> tuple[np.ndarray, dict]:
    """Optimise images (N, H, W, 3) so the target model's embedding matches ``target`` (cosine), until the
    mean loss stops improving (at most ``steps`` steps); returns each image's iterate closest to its template and
    the convergence record.

    Always in float32, whatever the run's attack precision: it is short (a fiftieth of the decoder's work, so
    bfloat16 would save about a second on the CPU) and refines a reconstruction to match one template closely,
    where the precision of the gradient matters most."""
    from audit.probes.convergence import Plateau

    device = backend.device
    x = torch.from_numpy(start).permute(0, 3, 1, 2).float().to(device).requires_grad_(True)
    t = F.normalize(torch.from_numpy(target.astype(np.float32)).to(device), dim=1)
    opt = torch.optim.Adam([x], lr=2.0)
    plateau = Plateau(cap=steps, patience=patience)

    def objective(x):
        """Each image's (cosine distance to its template, TV prior); the mean of their sum is what Adam follows."""
        e = F.normalize(backend.embed_tensor(x, precision="float32"), dim=1)
        dims = (1, 2, 3)
        smooth = (x[..., 1:, :] - x[..., :-1, :]).abs().mean(dims) + (x[..., 1:] - x[..., :-1]).abs().mean(dims)
        return 1 - (e * t).sum(1), tv * smooth

    # Each image's iterate closest to its template is kept (the attacker holds the model and the template, so can
    # compute it; the prior only steers the search): Adam at this step size still moves an image about once the
    # mean has levelled off.
    best, best_distance = x.detach().clone(), torch.full((len(x),), float("inf"), device=device)

    def keep(x, distance):
        better = distance < best_distance
        best[better], best_distance[better] = x.detach()[better], distance[better]

    while True:
        distance, prior = objective(x)
        keep(x, distance.detach())
        loss = (distance + prior).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 255)
        if plateau.step(loss.item()):  # after the update, so a cap of N steps makes N updates
            break
    with torch.no_grad():
        keep(x, objective(x)[0])
    return (best.permute(0, 2, 3, 1).round().byte().cpu().numpy(),
            {**plateau.record(), "measure": "cosine distance to the victim's template + TV prior",
             "kept": "each image's iterate closest to its template", "precision": "float32"})


SSIM_WINDOW, SSIM_K1, SSIM_K2 = 7, 0.01, 0.03


def image_quality(recon: np.ndarray, source: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image pair (N, H, W, 3) uint8: (SSIM, PSNR in dB) on the 0-255 range.

    SSIM is scikit-image's ``structural_similarity(a, b, channel_axis=2, data_range=255)`` (7x7 uniform
    window, sample covariance, mean over channels of the border-cropped map) computed with OpenCV box
    filters in single precision: within 1e-6 of scikit-image (tests/probes check it) at a quarter of its
    time; one scikit-image call per image was an eighth of the inversion probe. PSNR is
    ``peak_signal_noise_ratio(b, a, data_range=255)``; identical images give +inf (a zero-budget cloak),
    stored as null."""
    import cv2

    cov_norm = SSIM_WINDOW**2 / (SSIM_WINDOW**2 - 1)
    c1, c2 = (SSIM_K1 * 255) ** 2, (SSIM_K2 * 255) ** 2
    pad = (SSIM_WINDOW - 1) // 2

    def box(z):
        return cv2.blur(z, (SSIM_WINDOW, SSIM_WINDOW), borderType=cv2.BORDER_REFLECT)  # scipy's "reflect"

    ssim, mse = np.zeros(len(recon)), np.zeros(len(recon))
    for i, (a, b) in enumerate(zip(recon, source)):
        x, y = a.astype(np.float32), b.astype(np.float32)
        mse[i] = ((x - y) ** 2).mean(dtype=np.float64)  # integer squares: exact in single precision
        ux, uy = box(x), box(y)
        vx, vy, vxy = (cov_norm * (box(x * x) - ux * ux), cov_norm * (box(y * y) - uy * uy),
                       cov_norm * (box(x * y) - ux * uy))
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        ssim[i] = s[pad:-pad, pad:-pad].mean(dtype=np.float64)
    with np.errstate(divide="ignore"):
        psnr = 10 * np.log10(255.0**2 / mse)
    return ssim, psnr


@dataclass(frozen=True)
class VictimCalibration:
    """One judge's thresholds on the victims' clean impostor comparisons (each image against every later image of
    another person), with the comparisons themselves for :meth:`SubjectBootstrap.share_at_own_threshold`."""

    taus: dict[float, float]
    """FMR target -> threshold, for the targets the comparisons reach."""
    unsupported: dict[float, str]
    """Targets the victims cannot back by the rule of 30, and why."""
    scores: np.ndarray
    """Every impostor score, in the row-major order of ``pairs``."""
    pairs: np.ndarray
    """Victim image i x victim image j: True where i < j and their persons differ (the comparisons)."""
    persons: np.ndarray
    """Each victim image's person (position among the victims' persons, as np.unique sorts them)."""
    compared: np.ndarray
    """Comparisons per (first image's person, second image's person)."""

    def where(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(first image, second image's person) of the comparisons at positions ``idx`` of ``scores``."""
        rows, cols = mask_positions(self.pairs, idx)
        return rows, self.persons[cols]


@register
class InversionProbe:
    name = "inversion"
    title = "Template inversion"
    needs_embedding = True
    white_box = True

    @staticmethod
    def conditions(config) -> list[str]:
        """Clean templates and those of every mask the run puts on faces (``mask:<type>``; not the fixed-shape
        ``@template`` controls nor combined conditions): the masked-template rules take the worst mask, which must
        have been tried (until 0.5.0 only the first mask was; a review of the rules)."""
        return ["clean", *[c for c in config.conditions if c.startswith("mask:") and "@" not in c and "+" not in c]]

    def check(self, config, dataset, model) -> None:
        if model.profile.kind != "embedding":
            raise ConfigError(f"inversion: {model.name} is an attributes model; templates come from FR models")
        counts = dataset.manifest["subject"].value_counts()
        if (counts >= 2).sum() < 10:
            raise ConfigError("inversion: needs at least 10 people with two or more images (victims and auxiliary "
                              f"people); {dataset.source} has {(counts >= 2).sum()}")

    def run(self, ctx: ProbeContext) -> ProbeResult:
        cfg = ctx.config
        steps = SETTINGS[cfg.preset]
        subjects = ctx.subjects
        aux, victims = subject_split(subjects, 0.5, derive_seed(ctx.seed, "inversion-split"))
        rng = np.random.default_rng(derive_seed(ctx.seed, "inversion-subsample"))
        if len(aux) > steps["aux"]:
            aux = np.sort(rng.choice(aux, steps["aux"], replace=False))
        result = ProbeResult()
        device = ctx.model.compute.torch_device  # where torch trains the decoder (not onnxruntime's device)
        emb = ctx.embeddings("clean")
        # Only the auxiliary people's and the victims' faces are decoded.
        aux_images, victim_images = ctx.faces.load(aux), ctx.faces.load(victims)
        evaluator = ctx.evaluator
        attacker = ctx.attacker_model.torch() if ctx.attacker_model is not None else None
        weaker = ctx.attacker_model is not None and attacker is None
        if weaker:
            result.notes.append(f"Decoder trained without identity loss: {ctx.attacker_model.torch_error}. The "
                                "black-box rows are stored without a number and the query attack, which starts from "
                                "the decoder's faces, was not run: the attacker given holds that model, and an attack "
                                "without it is weaker (run without --attacker-model to measure that one)")
        dec, stats = fit_decoder(emb[aux], aux_images, subjects[aux], cfg.setting("synthetic_faces"), steps["epochs"],
                                 derive_seed(ctx.seed, "decoder"), derive_seed(ctx.seed, "synthetic"),
                                 ctx.model.infer.embed, device=device, identity_model=attacker,
                                 precision=ctx.model.precision)
        stats["identity_loss_model"] = ctx.attacker_model.name if attacker is not None else None
        ctx.progress(0.4, f"decoder trained ({stats['images_per_s']:.0f} images/s)")
        # Victim-side calibration: clean impostor scores between victims' images (first image = gallery).
        vsub = subjects[victims]
        boot = SubjectBootstrap(vsub, cfg.setting("bootstrap"), ctx.seed, "inversion")
        judges = {"target": (ctx.model, emb[victims], self.calibrate(emb[victims], vsub))}
        if evaluator is not None:
            ev_emb = evaluator.infer.embed(victim_images)
            judges["evaluator"] = (evaluator, ev_emb, self.calibrate(ev_emb, vsub))
        result.notes += list(dict.fromkeys(f"Victim thresholds: {why}" for *_, cal in judges.values()
                                           for why in cal.unsupported.values()))
        ctx.progress(0.45, "calibrated victim thresholds")
        recon_sets = {"black-box": {"clean": decode(dec, emb[victims], device)}}
        # An attacker holding masked templates embeds their auxiliary faces under the same mask and tunes the decoder
        # to rebuild clean faces from those templates (judged against their clean templates on the persons the clean
        # decoder held out too, its seed's split, so that neither was trained on them; the clean decoder itself kept
        # when tuning does not help). Until 0.11.0 the clean decoder was applied to masked templates as it was:
        # fr-baseline's masked SAR type I 0.45-0.53 at FMR 1e-2 where tuned it is 0.74-0.78 (a review of the probes).
        stats["masked"], clean_queries = {}, stats["queries"]
        for cond in self.conditions(cfg)[1:]:
            masked_dec, stats["masked"][cond] = train_decoder(
                ctx.embeddings(cond)[aux], aux_images, max(2, steps["epochs"] // 4),
                derive_seed(ctx.seed, "decoder"), device=device, identity_model=attacker, subjects=subjects[aux],
                judge=ctx.model.infer.embed, precision=ctx.model.precision, init=dec, judged_against=emb[aux],
                patience=2)
            stats["queries"] += len(aux) + stats["masked"][cond]["judge_queries"]  # the masked faces embedded too
            recon_sets["black-box"][cond] = decode(masked_dec, ctx.embeddings(cond)[victims], device)
        ctx.progress(0.5, "black-box reconstructions done")
        # White-box and query attacks on one seeded subset of victims (they are the slow part on CPU); their metrics
        # use that subset, so the two are compared on the same people.
        wb = np.sort(rng.choice(len(victims), min(len(victims), steps["wb_victims"]), replace=False))
        torch_b = ctx.model.torch()
        if torch_b is None:
            result.notes.append(f"White-box inversion skipped: {ctx.model.torch_error}")
        else:
            wb_images, stats["white_box_convergence"] = white_box(torch_b, recon_sets["black-box"]["clean"][wb],
                                                                  emb[victims][wb], steps["wb_steps"])
            recon_sets["white-box"] = {"clean": (wb, wb_images)}
            # Masked templates too, from the tuned decoder's faces (before 0.11.0 the clean decoder's, whose
            # reconstructions of masked ones were the weakest attack: a review of the probe); the masked-template
            # rules take the strongest attack, which must have been tried.
            stats["white_box_convergence_masked"] = {}
            for cond in self.conditions(cfg)[1:]:
                masked, stats["white_box_convergence_masked"][cond] = white_box(
                    torch_b, recon_sets["black-box"][cond][wb], ctx.embeddings(cond)[victims][wb], steps["wb_steps"])
                recon_sets["white-box"][cond] = (wb, masked)
        ctx.progress(0.6, "white-box reconstructions done")
        budget = cfg.setting("inversion_queries")
        query = {"threat_models": THREAT_MODELS, "answer": "similarity score only", "budget": budget,
                 "victims": int(len(wb))}
        if weaker:  # it would refine the weaker decoder's faces, spending the run's longest minutes on a weaker attack
            query["not_tried"] = "the decoder it starts from trained without the attacker's model (--attacker-model)"
            result.metrics.append(MetricRecord.without_number(self.name, "clean", "queries_per_victim", NEUTRAL,
                                                              setting="query"))
        else:
            oracle = ScoreOracle(ctx.model.infer.embed, emb[victims][wb])
            q = query_attack(oracle, recon_sets["black-box"]["clean"][wb], budget,
                             derive_seed(ctx.seed, "inversion-query"))
            recon_sets["query"] = {"clean": (wb, q.images)}
            taus_t = judges["target"][2].taus
            query |= {"queries_per_victim": float(q.queries.mean()), "pop": POP, "sigma": SIGMA, "lr": LR,
                      "grid": RES, "decoder_queries": clean_queries,  # it starts from the clean decoder's faces
                      "curve": {"queries": q.checkpoints,
                                "sar_type1": {f"{t:g}": [float(np.mean(b >= tau)) for b in q.snapshots]
                                              for t, tau in taus_t.items()}}}
            result.metrics.append(MetricRecord(self.name, "clean", "queries_per_victim", float(q.queries.mean()),
                                               float(q.queries.mean()), float(q.queries.mean()), int(len(wb)),
                                               NEUTRAL, setting="query"))
        # Control: a real face of someone else (an auxiliary person), submitted as is.
        recon_sets["random-face"] = {"clean": (wb, aux_images[rng.choice(len(aux), len(wb))])}
        result.artifacts.append(Artifact.json(self.name, "query_attack.json", query))
        result.artifacts.append(Artifact.json(self.name, "decoder.json", stats))
        ctx.progress(0.7, "reconstructions done")
        series: list[dict] = []  # per-victim outcomes for paired comparisons between models
        for attack, by_cond in recon_sets.items():
            for cond, recon in by_cond.items():
                sel = np.arange(len(victims))
                if isinstance(recon, tuple):
                    sel, recon = recon
                sub_boot = boot if len(sel) == len(victims) else SubjectBootstrap(
                    vsub[sel], cfg.setting("bootstrap"), ctx.seed, f"inversion-{attack}")
                for judge, (model, v_emb, cal) in judges.items():
                    result.metrics += self._metrics(f"{attack};{judge}", cond, model.infer.embed(recon), v_emb, vsub,
                                                    cal, boot, sub_boot, sel, series)
                ssim, psnr = image_quality(recon, victim_images[sel])
                for name, arr in (("ssim", ssim), ("psnr", psnr)):
                    est = sub_boot.mean(arr)
                    result.metrics.append(MetricRecord.of(self.name, cond, name, est, RISK, setting=attack))
        if ctx.attribute_model is not None:
            result.metrics += self._attributes(ctx, recon_sets["black-box"], victim_images, victims, boot)
        if "white-box" not in recon_sets:  # skipped (no torch backend): its rows say so, so that no rule pooling
            # every threat model passes on the others as if the attacker holding the model file had been tried
            result.metrics += self._not_run("white-box", self.conditions(cfg), judges)
        if weaker:  # the attacks that start from the decoder's faces, judged as not tried: the decoder's rows (its
            # success rates, rank-1, image quality and the attributes read off its faces) and the query attack's,
            # which did not run
            result.metrics = [r.not_tried() if r.setting.split(";")[0] in ("black-box", "reconstruction") else r
                              for r in result.metrics]
            result.metrics += self._not_run("query", ["clean"], judges)
            series[:] = [x for x in series if not x["setting"].startswith("black-box;")]
        result.artifacts.append(self._grid(victim_images, recon_sets))
        result.artifacts.append(outcomes_artifact(self.name, ctx.faces.rows[victims], vsub, series))
        ctx.progress(1.0, "done")
        return result

    def _not_run(self, attack: str, conds: list[str], judges: dict) -> list[MetricRecord]:
        """The rows an attack that did not run would have stored, each without a number (which no rule passes): its
        success rates at every threshold and rank-1 for each judge, and its image quality, on each condition."""
        rows = []
        for cond in conds:
            for judge, (_, _, cal) in judges.items():
                rows += [MetricRecord.without_number(self.name, cond, metric, RISK, setting=operating_point(
                             "fmr", t, t in cal.unsupported, attack=f"{attack};{judge}"))
                         for t in cal.taus for metric in ("sar_type1", "sar_type2")]
                rows.append(MetricRecord.without_number(self.name, cond, "inversion_rank1", RISK,
                                                        setting=f"{attack};{judge}"))
            rows += [MetricRecord.without_number(self.name, cond, name, RISK, setting=attack) for name in ("ssim",
                                                                                                          "psnr")]
        return rows

    def _attributes(self, ctx, by_cond, originals, victims, boot) -> list[MetricRecord]:
        """Accuracy (categorical) or MAE (regression) of the attribute model on reconstructions and originals, over
        the victims labelled with the attribute (an unlabelled one is neither a hit nor a miss), resampled by person."""
        import pandas as pd

        out = []
        model = ctx.attribute_model
        sets = {"original": originals} | {f"reconstruction:{c}": r for c, r in by_cond.items()}
        labelled = {}
        for head in model.profile.heads:
            if head.attribute in ctx.dataset.manifest.columns:
                truth = ctx.column(head.attribute)[victims]
                known = ~pd.isna(truth)
                labelled[head.attribute] = (truth[known], known, boot if known.all() else SubjectBootstrap(
                    boot.uniq[boot.inverse][known], len(boot.draws), ctx.seed, f"inversion-attribute-{head.attribute}"))
        for label, imgs in sets.items():
            preds = model.infer.predict(imgs)
            for head in model.profile.heads:
                if head.attribute not in labelled:
                    continue
                truth, known, by_person = labelled[head.attribute]
                metric = "recon_attr_accuracy" if head.type == "categorical" else "recon_attr_mae"
                direction = RISK if head.type == "categorical" else "lower_is_riskier"
                cond = "clean" if label == "original" else label.split(":", 1)[1]
                if not len(truth):  # no victim labelled with it: not measured, said so
                    out.append(MetricRecord.without_number(self.name, cond, metric, direction, attribute=head.attribute,
                                                           setting=label.split(":")[0]))
                    continue
                if head.type == "categorical":
                    guess = np.array(head.labels)[preds[head.attribute][known].argmax(1)]
                    est = by_person.mean((guess == truth.astype(str)).astype(float), rate=True)
                else:
                    est = by_person.mean(np.abs(preds[head.attribute][known] - truth.astype(float)))
                out.append(MetricRecord.of(self.name, cond, metric, est, direction, attribute=head.attribute,
                                           setting=label.split(":")[0]))
        return out

    @staticmethod
    def calibrate(emb: np.ndarray, subjects: np.ndarray) -> VictimCalibration:
        """The threshold at each FMR target on the victims' impostor comparisons, and for each target the victims
        cannot back by the rule of 30 (impostor comparisons and person pairs, as the identity probe counts them) the
        sentence why: its results are stored as ``;unsupported``, which no rule passes. The comparisons are kept, so
        that every bootstrap resample chooses its own threshold (:class:`VictimCalibration`)."""
        who = np.unique(subjects, return_inverse=True)[1]  # persons' positions, as SubjectBootstrap numbers them
        pairs = np.triu(who[:, None] != who[None, :], 1)
        imp = ver.cosine_matrix(emb, emb)[pairs]
        ok, _ = ver.supported_fmrs(len(imp), FMRS)
        persons = who.max() + 1
        everyone = np.arange(persons)
        points = {p.fmr: p for p in ver.operating_points(len(imp), ver.distinct_person_pairs(everyone, everyone),
                                                          FMRS)}
        return VictimCalibration({t: ver.threshold_at_fmr(imp, t) for t in ok},
                                 {t: points[t].explain() for t in ok if not points[t].supported},
                                 imp, pairs, who, pairs_within(who, persons))

    def _metrics(self, attack, cond, r_emb, v_emb, vsub, cal, boot, sub_boot, sel,
                 series=None) -> list[MetricRecord]:
        """Reconstructions of victims ``sel`` against every victim original (``v_emb``) at each threshold of
        ``cal`` (those it cannot back labelled ``;unsupported``); each victim's type I success is appended to
        ``series`` (outcomes for paired comparisons).

        SAR intervals choose the threshold again on every resample of the victims (``boot``, two-way on the impostor
        comparisons, as the identity probe's TAR at FMR): the threshold is a tail quantile of a few victims'
        impostor scores, and holding it at the whole sample's value would make the interval too narrow. A
        reconstruction weighs how often its victim was drawn. Rank-1 needs no threshold (``sub_boot``: the
        victims attacked)."""
        s = ver.cosine_matrix(r_emb, v_emb)  # reconstruction k (of victim image sel[k]) vs every original j
        rows = np.arange(len(sel))
        own = s[rows, sel]
        other = vsub[sel][:, None] == vsub[None, :]
        other[rows, sel] = False
        k2, j2 = np.nonzero(other)  # type II: reconstruction k against another image of its person
        second = s[k2, j2]
        persons = boot.inverse[sel]
        out = []
        for t, tau in cal.taus.items():
            setting = operating_point("fmr", t, t in cal.unsupported, attack=attack)
            if series is not None:  # with the highest impostor comparisons, so that a paired comparison chooses
                # each model's threshold again on every replicate too
                series.append({"metric": "sar_type1", "condition": cond, "setting": setting, "attribute": "",
                               "kind": "share_at_rate", "rate": t, "positives": own, "units": sel,
                               "impostors": "within", **kept_impostors(cal.scores, cal.pairs, t)})
            for metric, scores, who in (("sar_type1", own, persons), ("sar_type2", second, persons[k2])):
                if not len(scores):  # no attacked victim has a second image
                    continue
                boots = boot.share_at_own_threshold(scores, cal.scores, cal.where, cal.compared, t,
                                                    positive_persons=who)
                est = boot.from_resamples(float(np.mean(scores >= tau)), boots, rate=True,
                                          persons=len(np.unique(who)), observations=len(scores))
                out.append(MetricRecord.of(self.name, cond, metric, est, RISK, setting=setting))
        hits = (vsub[np.argmax(s, axis=1)] == vsub[sel]).astype(float)
        out.append(MetricRecord.of(self.name, cond, "inversion_rank1", sub_boot.mean(hits, rate=True), RISK,
                                   setting=attack))
        return out

    @staticmethod
    def _grid(source: np.ndarray, recon_sets: dict, n: int = 6) -> Artifact:
        """Originals and each attack's reconstructions of them, from clean templates and from the first mask's (the
        other masks' look alike and would lengthen the printed report; their numbers are in the tables)."""
        import cv2

        idx = np.linspace(0, len(source) - 1, min(n, len(source))).astype(int)
        rows = [np.concatenate(list(source[idx]), 1)]
        names = ["original"]
        subset_shown = False
        for attack, by_cond in recon_sets.items():
            if attack == "random-face":  # the control shows other people's faces: nothing to see
                continue
            for cond, recon in list(by_cond.items())[:2]:
                if isinstance(recon, tuple):  # white-box / query subset: show the first few it attacked
                    sel, recon = recon
                    pos = np.arange(min(len(idx), len(sel)))
                    if not subset_shown:
                        rows.append(np.concatenate(list(source[sel[pos]]), 1))
                        names.append("originals of the white-box and query victims")
                        subset_shown = True
                    rows.append(np.concatenate(list(recon[pos]), 1))
                else:
                    rows.append(np.concatenate(list(recon[idx]), 1))
                names.append(f"{attack} from {cond}")
        ok, png = cv2.imencode(".png", np.concatenate(rows, 0)[..., ::-1])
        return Artifact("inversion", "reconstructions.png", "image/png", png.tobytes(), {"rows": names})
