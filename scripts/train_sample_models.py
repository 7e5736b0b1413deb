"""Train the four sample models in ``sample_data/models`` from synthetic people.

    .venv/bin/python scripts/train_sample_models.py --out sample_data/models

Training people come from the ``train`` split of the generator (seeded), so none of them
is in the evaluation set (``eval`` split). Every random choice is seeded; on the same
machine and library versions the script reproduces the committed files' behaviour (ONNX
bytes can differ across PyTorch versions).

Models (all take 112x112 RGB, NCHW, (x - 127.5) / 127.5):

* ``fr-baseline``: CNN embedding (128-d) trained with a CosFace margin loss.
* ``fr-maskaware``: the same with half of the training faces masked (surgical/cloth/n95).
* ``fr-private``: the same with adversarial heads for ``sex`` and ``skin_tone`` behind a
  gradient-reversal layer plus a group-mean matching penalty, which push those attributes
  out of the embedding.
* ``fr-robust``: the same trained adversarially (fast adversarial training: half of each batch's
  loss is CosFace on a one-step perturbation, from a random start within ``--robust-eps`` on the
  0-255 scale, that pushes every feature away from its clean feature). Cloaks need several times
  more steps against it: the sample world's hard case. The budget is chosen so the model is hard
  but breakable at the cloak probe's eps 8: at 1.25, 16 sign steps leave many protected people
  recognised and the converged attack protects all of them; at 1.5 no universal cloak passes
  PSR@1 0.94, at 2 or more (with or without a feature-shift penalty) none passes 0.6, and at 1
  16 steps already protect everyone.
* ``attr-classifier``: heads ``sex`` (2 classes), ``skin_tone`` (3 classes), ``age`` (years/100).

Time here (2-core CPU, torch 2.15, nothing else running): see the JSON line the script prints last;
the committed models took about 10 minutes together.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml

from audit.conditions import apply as apply_condition
from audit.data.images import align
from audit.synth import TRAINING_RECIPE, Recipe, generate_arrays
from audit.synth.render import POINT_NAMES

SEED = TRAINING_RECIPE.seed  # 1234: the membership probe's sample set redraws these people (audit/synth)
SEX = ["female", "male"]
TONES = ["light", "medium", "dark"]
NAMES = tuple(n.removeprefix("pt_") for n in POINT_NAMES)


def backbone(dim: int) -> nn.Sequential:
    def block(cin, cout, stride):
        return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.PReLU(cout)]

    return nn.Sequential(*block(3, 16, 2), *block(16, 32, 2), *block(32, 32, 1), *block(32, 64, 2),
                         *block(64, 64, 1), *block(64, 64, 2), nn.Flatten(), nn.Dropout(0.1),
                         nn.Linear(64 * 7 * 7, dim), nn.BatchNorm1d(dim))


class GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lam):
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return -ctx.lam * g, None


class FRNet(nn.Module):
    def __init__(self, n_ids: int, dim: int = 128, adversary: bool = False):
        super().__init__()
        self.body = backbone(dim)
        self.weight = nn.Parameter(torch.randn(n_ids, dim) * 0.01)
        self.adv = nn.ModuleDict({
            "sex": nn.Sequential(nn.Linear(dim, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 2)),
            "skin_tone": nn.Sequential(nn.Linear(dim, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                                       nn.Linear(128, 3))}) if adversary else None

    def forward(self, x):
        return self.body(x)


class AttrNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = backbone(128)
        self.sex, self.skin_tone, self.age = nn.Linear(128, 2), nn.Linear(128, 3), nn.Linear(128, 1)

    def forward(self, x):
        h = F.relu(self.body(x))
        return self.sex(h), self.skin_tone(h), self.age(h)


def cosface(emb, weight, labels, s=30.0, m=0.35):
    cos = F.normalize(emb) @ F.normalize(weight).T
    return F.cross_entropy(s * (cos - m * F.one_hot(labels, cos.shape[1])), labels)


def load_training(people: int, images: int, split: str = TRAINING_RECIPE.split):
    """Aligned faces, aligned points and manifest rows of persons 0..people-1 of ``split`` (images 0..images-1)."""
    faces, df = generate_arrays(Recipe(people=people, images=images, seed=SEED, split=split))
    pts = df[[f"{n}_{ax}" for n in POINT_NAMES for ax in ("x", "y")]].to_numpy(np.float64).reshape(len(df), -1, 2)
    aligned, apts = zip(*(align(f, p, (112, 112)) for f, p in zip(faces, pts)))
    return np.stack(aligned), np.stack(apts), df


def to_tensor(x: np.ndarray) -> torch.Tensor:
    return (torch.from_numpy(x).permute(0, 3, 1, 2).float() - 127.5) / 127.5


def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Flip-free light augmentation: brightness jitter and small shifts."""
    out = x.astype(np.float32) * rng.uniform(0.85, 1.15, (len(x), 1, 1, 1))
    dx, dy = rng.integers(-2, 3, 2)
    out = np.roll(out, (int(dy), int(dx)), axis=(1, 2))
    return np.clip(out, 0, 255)


def perturb(net, x: torch.Tensor, eps: float, gen: torch.Generator) -> torch.Tensor:
    """One signed-gradient step (step 1.25 eps) from a uniform random start within eps (0-255 scale), which
    pushes each normalised feature away from its clean feature: the cloak's own objective (fast AT)."""
    scale = eps / 127.5                                  # inputs are normalised by (x - 127.5) / 127.5
    delta = (torch.rand(x.shape, generator=gen) * 2 - 1) * scale
    was = net.training
    net.eval()                                            # batch statistics stay those of clean batches
    with torch.no_grad():
        clean = F.normalize(net(x), dim=1)
    delta.requires_grad_(True)
    loss = ((F.normalize(net((x + delta).clamp(-1, 1)), dim=1) - clean) ** 2).sum()
    grad, = torch.autograd.grad(loss, delta)
    net.train(was)
    delta = (delta + 1.25 * scale * grad.sign()).clamp(-scale, scale)
    return (x + delta).clamp(-1, 1).detach()


def train_fr(images, pts, df, epochs, masked=False, adversary=False, robust_eps=0.0, log=print):
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    gen = torch.Generator().manual_seed(SEED + 11)
    ids = df["subject"].astype("category").cat.codes.to_numpy()
    sex = df["sex"].map(SEX.index).to_numpy()
    tone = df["skin_tone"].map(TONES.index).to_numpy()
    if masked:  # a fixed masked copy per image, chosen at random per epoch
        kinds = ["mask:surgical", "mask:cloth", "mask:n95"]
        rows = np.arange(len(images))
        masked_imgs = np.empty_like(images)
        for i, k in enumerate(rng.integers(0, 3, len(images))):
            masked_imgs[i] = apply_condition(kinds[k], images[i:i + 1], pts[i:i + 1], NAMES, rows[i:i + 1], SEED + 7)[0]
    net = FRNet(int(ids.max()) + 1, adversary=adversary)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=5e-4)
    steps = epochs * (len(images) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    net.train()
    for ep in range(epochs):
        order = rng.permutation(len(images))
        total = 0.0
        for b in range(len(images) // 128):
            idx = order[b * 128:(b + 1) * 128]
            x = images[idx]
            if masked:
                use = rng.random(len(idx)) < 0.5
                x = np.where(use[:, None, None, None], masked_imgs[idx], x)
            xt = to_tensor(augment(x, rng))
            emb = net(xt)
            loss = cosface(emb, net.weight, torch.from_numpy(ids[idx]).long())
            if robust_eps > 0:  # half clean, half adversarial CosFace
                adv = net(perturb(net, xt, robust_eps, gen))
                loss = 0.5 * loss + 0.5 * cosface(adv, net.weight, torch.from_numpy(ids[idx]).long())
            if adversary:
                # Gradient reversal (lambda ramps up to 4) against non-linear adversaries, plus matching of the
                # group means, which removes what a linear attacker reads most easily.
                lam = 4.0 * min(1.0, (ep * (len(images) // 128) + b) / max(1, steps // 2))
                z = F.normalize(emb)
                rev = GradReverse.apply(z, lam)
                s_t, t_t = torch.from_numpy(sex[idx]).long(), torch.from_numpy(tone[idx]).long()
                loss = loss + F.cross_entropy(net.adv["sex"](rev), s_t) + F.cross_entropy(net.adv["skin_tone"](rev), t_t)
                for labels, k in ((s_t, 2), (t_t, 3)):
                    means = [z[labels == c].mean(0) for c in range(k) if (labels == c).any()]
                    centre = torch.stack(means).mean(0)
                    loss = loss + 20.0 * sum(((m - centre) ** 2).sum() for m in means)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        log(f"  epoch {ep + 1}/{epochs} loss {total / max(1, len(images) // 128):.3f}")
    return net.body.eval()


def train_attr(images, df, epochs, log=print):
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED + 1)
    sex = torch.from_numpy(df["sex"].map(SEX.index).to_numpy()).long()
    tone = torch.from_numpy(df["skin_tone"].map(TONES.index).to_numpy()).long()
    age = torch.from_numpy(df["age"].to_numpy() / 100.0).float()
    net = AttrNet()
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=5e-4)
    steps = epochs * (len(images) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    net.train()
    for ep in range(epochs):
        order = rng.permutation(len(images))
        total = 0.0
        for b in range(len(images) // 128):
            idx = order[b * 128:(b + 1) * 128]
            s, t, a = net(to_tensor(augment(images[idx], rng)))
            loss = F.cross_entropy(s, sex[idx]) + F.cross_entropy(t, tone[idx]) + 10 * F.mse_loss(a[:, 0], age[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        log(f"  epoch {ep + 1}/{epochs} loss {total / max(1, len(images) // 128):.3f}")
    return net.eval()


def export(module: nn.Module, path: Path, output_names: list[str], profile: dict, description: str) -> None:
    dummy = torch.zeros(2, 3, 112, 112)
    torch.onnx.export(module, dummy, str(path), input_names=["input"], output_names=output_names,
                      dynamic_axes={"input": {0: "batch"}, **{o: {0: "batch"} for o in output_names}},
                      opset_version=17, dynamo=False)
    model = onnx.load(str(path))
    for k, v in {"faceaudit.mean": "127.5,127.5,127.5", "faceaudit.std": "127.5,127.5,127.5",
                 "description": description, "trained_by": "scripts/train_sample_models.py"}.items():
        model.metadata_props.add(key=k, value=v)
    model.producer_name = "faceaudit-sample"
    onnx.save(model, str(path))
    header = f"# Profile of the sample model {profile['name']} (written by scripts/train_sample_models.py)\n"
    path.with_name(path.name.removesuffix(".onnx") + ".profile.yaml").write_text(
        header + yaml.safe_dump(profile, sort_keys=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("sample_data/models"))
    ap.add_argument("--people", type=int, default=TRAINING_RECIPE.people)
    ap.add_argument("--images", type=int, default=TRAINING_RECIPE.images)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--robust-eps", type=float, default=1.25, help="fr-robust's training budget (0-255 scale)")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    images, pts, df = load_training(args.people, args.images)
    print(f"training set: {len(images)} images of {args.people} people ({time.time() - t0:.0f}s)")
    inp = {"name": "input", "size": [112, 112], "layout": "NCHW", "color": "RGB",
           "mean": [127.5] * 3, "std": [127.5] * 3}
    timings = {}
    jobs = {
        "fr-baseline": dict(masked=False, adversary=False, desc="Sample FR model (CosFace), trained on clean faces"),
        "fr-maskaware": dict(masked=True, adversary=False, desc="Sample FR model trained with mask augmentation"),
        "fr-private": dict(masked=False, adversary=True,
                           desc="Sample FR model with adversarial suppression of sex and skin tone"),
        "fr-robust": dict(masked=False, adversary=False, robust_eps=args.robust_eps,
                          desc=f"Sample FR model trained adversarially (feature-shift attacks, eps {args.robust_eps:g})"),
    }
    for name, job in jobs.items():
        if args.only and name not in args.only:
            continue
        t = time.time()
        print(f"{name}:")
        body = train_fr(images, pts, df, args.epochs, masked=job["masked"], adversary=job["adversary"],
                        robust_eps=job.get("robust_eps", 0.0))
        export(body, args.out / f"{name}.onnx", ["embedding"],
               {"name": name, "kind": "embedding", "input": inp, "embedding_output": "embedding"}, job["desc"])
        timings[name] = round(time.time() - t)
    if not args.only or "attr-classifier" in args.only:
        t = time.time()
        print("attr-classifier:")
        net = train_attr(images, df, args.epochs)
        export(net, args.out / "attr-classifier.onnx", ["sex", "skin_tone", "age"],
               {"name": "attr-classifier", "kind": "attributes", "input": inp, "heads": [
                   {"attribute": "sex", "output": "sex", "type": "categorical", "labels": SEX},
                   {"attribute": "skin_tone", "output": "skin_tone", "type": "categorical", "labels": TONES},
                   {"attribute": "age", "output": "age", "type": "regression", "scale": 100.0, "offset": 0.0}]},
               "Sample attribute classifier: sex, skin tone, age")
        timings["attr-classifier"] = round(time.time() - t)
    print(json.dumps({"seconds": timings, "total_seconds": round(time.time() - t0)}))


if __name__ == "__main__":
    main()
