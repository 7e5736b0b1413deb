"""Materialising synthetic datasets: in memory (training, tests) or as a folder + manifest.

The default evaluation set (``--data sample``) is ``DEFAULT_RECIPE``: 300 people x 8
images from the ``eval`` split. The sample models were trained on ``TRAINING_RECIPE`` (the
``train`` split), so no evaluation person is ever seen in training.

``MembershipRecipe`` is the membership probe's planted positive control: new images (new
pose, lighting, expression: image numbers the training never drew) of training identities,
labelled ``member`` 1, and fresh identities of the same split that no model trained on,
labelled 0.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from audit.synth.people import make_person
from audit.synth.render import POINT_NAMES, draw, make_nuisance


@dataclass(frozen=True)
class Recipe:
    """Everything that determines a synthetic dataset's bytes."""

    people: int = 300
    images: int = 8
    seed: int = 0
    split: str = "eval"

    def key(self) -> str:
        return f"{self.split}-s{self.seed}-p{self.people}-i{self.images}"


    @property
    def count(self) -> int:
        return self.people

    def draws(self, i: int):
        """Person ``i`` of the recipe, the image numbers drawn of them, and extra manifest fields."""
        return make_person(self.seed, self.split, i), range(self.images), {}


DEFAULT_RECIPE = Recipe()
TRAINING_RECIPE = Recipe(people=500, images=8, seed=1234, split="train")
"""What ``scripts/train_sample_models.py`` trains every sample model on (its defaults): persons 0-499 of the
``train`` split, image numbers 0-7 of each."""


@dataclass(frozen=True)
class MembershipRecipe:
    """Members: the first ``members`` training identities of :data:`TRAINING_RECIPE`, drawn at image numbers
    ``TRAINING_RECIPE.images`` onwards (new pose, lighting, expression; never trained on). Non-members: persons
    ``TRAINING_RECIPE.people`` onwards of the same split and seed (the same distribution, never trained on).
    Both sides draw the same image numbers, so their nuisance is alike and only training differs."""

    members: int = 200
    nonmembers: int = 300
    images: int = 4
    membership: bool = True
    """Marks the recipe in ``recipe.json`` (a membership set is never mistaken for the evaluation set)."""

    def key(self) -> str:
        t = TRAINING_RECIPE
        return f"membership-{t.split}-s{t.seed}-m{self.members}-n{self.nonmembers}-i{self.images}"

    @property
    def count(self) -> int:
        return self.members + self.nonmembers

    def draws(self, i: int):
        t = TRAINING_RECIPE
        member = i < self.members
        index = i if member else t.people + (i - self.members)
        return (make_person(t.seed, t.split, index), range(t.images, t.images + self.images),
                {"member": int(member)})


DEFAULT_MEMBERSHIP = MembershipRecipe()
MANIFEST_COLUMNS = ["image", "subject", "sex", "skin_tone", "age", "control"] + [
    f"{n}_{ax}" for n in POINT_NAMES for ax in ("x", "y")]


def _render_people(args: tuple[Recipe | MembershipRecipe, list[int]]) -> tuple[list[np.ndarray], list[dict]]:
    recipe, indices = args
    images, rows = [], []
    for i in indices:
        person, ks, extra = recipe.draws(i)
        for k in ks:
            # The nuisance stream is keyed by the recipe's seed and the person's id, exactly as in training.
            img, pts = draw(person, make_nuisance(_seed_of(recipe), person.pid, k))
            row = {"image": f"images/{person.pid}/{k:02d}.jpg", "subject": person.pid, "sex": person.sex,
                   "skin_tone": person.skin_tone, "age": float(person.age), "control": person.control, **extra}
            for name, (x, y) in zip(POINT_NAMES, pts):
                row[f"{name}_x"], row[f"{name}_y"] = round(float(x), 3), round(float(y), 3)
            images.append(img)
            rows.append(row)
    return images, rows


def _seed_of(recipe) -> int:
    return recipe.seed if isinstance(recipe, Recipe) else TRAINING_RECIPE.seed


def generate_arrays(recipe: Recipe | MembershipRecipe, workers: int | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """Render a recipe in memory: (N, 112, 112, 3) uint8 RGB and its manifest rows (with ``member`` for a
    :class:`MembershipRecipe`)."""
    workers = workers or min(4, os.cpu_count() or 1)
    people = list(range(recipe.count))
    chunks = [people[i::workers] for i in range(workers)] if workers > 1 else [people]
    if workers > 1 and recipe.count * recipe.images >= 200:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_render_people, [(recipe, c) for c in chunks]))
    else:
        parts = [_render_people((recipe, people))]
    images = [im for p in parts for im in p[0]]
    rows = [r for p in parts for r in p[1]]
    order = sorted(range(len(rows)), key=lambda j: rows[j]["image"])
    columns = MANIFEST_COLUMNS + (["member"] if isinstance(recipe, MembershipRecipe) else [])
    return np.stack([images[j] for j in order]), pd.DataFrame([rows[j] for j in order], columns=columns)


def checksum(folder: Path) -> str:
    """SHA-256 over the manifest and every image's bytes, in manifest order."""
    h = hashlib.sha256()
    manifest = folder / "manifest.csv"
    h.update(manifest.read_bytes())
    for rel in pd.read_csv(manifest, usecols=["image"])["image"]:
        h.update((folder / rel).read_bytes())
    return h.hexdigest()


def recorded_recipe(folder: Path) -> dict | None:
    """The recipe a materialised folder records in ``recipe.json`` (None when there is none), after checking that
    its files are still the ones written: a copy with images or manifest rows missing or changed is refused, so a
    protocol that pins a recipe cannot be met by a truncated or edited set."""
    from audit.errors import ConfigError

    meta = Path(folder) / "recipe.json"
    if not meta.is_file():
        return None
    try:
        stored = json.loads(meta.read_text())
        recipe, digest = stored["recipe"], stored["sha256"]
    except (ValueError, OSError, KeyError, TypeError):
        raise ConfigError(f"{meta}: damaged (not the recipe and SHA-256 that 'faceaudit sample-data' writes); "
                          "write the folder again with 'faceaudit sample-data'") from None
    try:
        actual = checksum(Path(folder))
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{folder}: the files of its recorded recipe cannot be read ({exc}); write the folder "
                          "again with 'faceaudit sample-data'") from None
    if actual != digest:
        raise ConfigError(f"{folder}: its manifest or images differ from the recipe recorded in recipe.json "
                          f"(SHA-256 {digest}, files {actual}); write the folder again with 'faceaudit sample-data'")
    return recipe


def materialise(out: Path, recipe: Recipe | MembershipRecipe = DEFAULT_RECIPE, workers: int | None = None) -> tuple[Path, str, bool]:
    """Write ``recipe`` to ``out`` (images/ + manifest.csv + recipe.json).

    Reuses an existing folder whose recipe and checksum match. Returns (folder, checksum,
    reused). Files are written to a temporary folder and renamed, so an interrupted run
    never leaves a half-written set behind.
    """
    out = Path(out)
    meta = out / "recipe.json"
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not meta.is_file())):
        # The folder is replaced as a whole below: never do that to a folder this function did not write.
        from audit.errors import ConfigError

        raise ConfigError(f"--out {out}: exists and is not a faceaudit sample-data folder; refusing to replace it "
                          "(choose a new or empty folder)")
    if meta.is_file():
        try:
            stored = json.loads(meta.read_text())
        except (ValueError, OSError):  # damaged: written again below
            stored = {}
        if isinstance(stored, dict) and stored.get("recipe") == asdict(recipe) and (out / "manifest.csv").is_file():
            try:
                if checksum(out) == stored.get("sha256"):
                    return out, stored["sha256"], True
            except OSError:
                pass
    images, df = generate_arrays(recipe, workers)
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    try:
        for rel, img in zip(df["image"], images):
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            ok, enc = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
            path.write_bytes(enc.tobytes())
        df.to_csv(tmp / "manifest.csv", index=False)
        digest = checksum(tmp)
        (tmp / "recipe.json").write_text(json.dumps({"recipe": asdict(recipe), "sha256": digest}, indent=2))
    except BaseException:  # disk full, Ctrl-C: leave no half-written .partial folder behind
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        import shutil

        shutil.rmtree(out)
    tmp.rename(out)
    return out, digest, False
