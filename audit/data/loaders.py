"""Dataset loaders: manifest + folder, one folder per person (LFW style), UTKFace names.

``load(path)`` returns a :class:`Dataset` with a validated manifest; ``Dataset.faces(size)``
decodes and aligns the images (cached), listing unusable images as quality issues.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from audit.data.images import QualityIssue, load_aligned
from audit.data.manifest import LANDMARK_COLUMNS, attribute_columns, read_manifest, validate_manifest
from audit.errors import DatasetError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
MANIFEST_NAMES = ("manifest.csv", "manifest.parquet")
UTK_PATTERN = re.compile(r"^(\d{1,3})_([01])_([0-4])_(\d+)\.jpg(\.chip\.jpg)?$", re.IGNORECASE)
UTK_RACES = ["white", "black", "asian", "indian", "other"]
OUTSIDE_ROOT = "{source}: row {row}, column 'image': path {image!r} resolves outside the dataset root {root}"


@dataclass(frozen=True)
class Faces:
    """Aligned faces of the usable images of a dataset."""

    images: np.ndarray
    """(N, H, W, 3) uint8 RGB."""
    landmarks: np.ndarray
    """(N, K, 2) point positions in aligned-face pixels: the 5 ArcFace landmarks, then any
    extra points named in :attr:`point_names`."""
    rows: np.ndarray
    """Manifest row index (0-based) of each face."""
    issues: list[QualityIssue]
    point_names: tuple[str, ...]


@dataclass
class Dataset:
    """A folder of face images with a validated manifest."""

    root: Path
    manifest: pd.DataFrame
    source: str
    """Where the manifest came from (file path, or ``lfw-folders`` / ``utkface-names``)."""
    name: str
    _dataset_id: str | None = field(default=None, repr=False)
    _faces: dict = field(default_factory=dict, repr=False)
    label_issues: list = field(default_factory=list, repr=False)
    """Data-quality records from a joined labels file (label rows that match nothing)."""

    @property
    def attributes(self) -> list[str]:
        return attribute_columns(self.manifest)

    @property
    def has_landmarks(self) -> bool:
        return all(c in self.manifest.columns for c in LANDMARK_COLUMNS)

    @property
    def point_names(self) -> tuple[str, ...]:
        """``lm0..lm4`` then the extra ``pt_*`` points that have both coordinates."""
        extra = [c[3:-2] for c in self.manifest.columns if c.startswith("pt_") and c.endswith("_x")
                 and c[:-2] + "_y" in self.manifest.columns]
        return tuple(f"lm{i}" for i in range(5)) + tuple(extra)

    @property
    def n_subjects(self) -> int:
        return int(self.manifest["subject"].nunique())

    @property
    def dataset_id(self) -> str:
        """SHA-256 over the manifest content and every image file's bytes."""
        if self._dataset_id is None:
            h = hashlib.sha256()
            h.update(self.manifest.drop(columns=["_path"]).to_csv(index=False).encode())
            for p in self.manifest["_path"]:
                try:
                    h.update(hashlib.sha256(Path(p).read_bytes()).digest())
                except OSError:
                    h.update(b"<missing>")
            self._dataset_id = h.hexdigest()
        return self._dataset_id

    def faces(self, size: tuple[int, int] = (112, 112)) -> Faces:
        """Decode and align every usable image to ``size`` (memoised per size)."""
        key = tuple(size)
        if key not in self._faces:
            lms = None
            names = self.point_names
            if self.has_landmarks:
                cols = LANDMARK_COLUMNS + [f"pt_{n}_{ax}" for n in names[5:] for ax in ("x", "y")]
                lms = self.manifest[cols].to_numpy(np.float64).reshape(len(self.manifest), -1, 2)
            paths = [Path(p) for p in self.manifest["_path"]]
            imgs, pts, issues = load_aligned(paths, self.manifest["image"].tolist(), lms, key,
                                             workers=min(8, (os.cpu_count() or 2) * 2))
            bad = {i.row - 1 for i in issues}
            rows = np.array([r for r in range(len(self.manifest)) if r not in bad], dtype=np.int64)
            if len(rows) == 0:
                raise DatasetError(f"{self.source}: none of the {len(self.manifest)} images could be read "
                                   f"(first problem: {issues[0].image}: {issues[0].detail})")
            self._faces[key] = Faces(images=imgs, landmarks=pts, rows=rows, issues=issues,
                                     point_names=names if lms is not None else names[:5])
        return self._faces[key]


def _check_inside(df: pd.DataFrame, root: Path, source: str) -> pd.DataFrame:
    root = root.resolve()
    paths = []
    for i, image in enumerate(df["image"]):
        if "\x00" in image:  # the OS cannot name such a file; Path.resolve would raise ValueError
            raise DatasetError(f"{source}: row {i + 1}, column 'image': {image!r} contains a NUL character")
        p = Path(image)
        target = (root / p).resolve()
        if p.is_absolute() or not target.is_relative_to(root):
            raise DatasetError(OUTSIDE_ROOT.format(source=source, row=i + 1, image=image, root=root))
        paths.append(str(target))
    df = df.copy()
    df["_path"] = paths
    return df


def from_manifest(manifest_path: Path, root: Path | None = None) -> Dataset:
    root = root or manifest_path.parent
    df = validate_manifest(read_manifest(manifest_path), str(manifest_path))
    df = _check_inside(df, root, str(manifest_path))
    return Dataset(root=root, manifest=df, source=str(manifest_path), name=root.name)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def from_person_folders(root: Path) -> Dataset:
    """LFW style: ``root/<person>/<image>``; the folder name is the subject."""
    rows = [{"image": str(p.relative_to(root)), "subject": d.name}
            for d in sorted(x for x in root.iterdir() if x.is_dir()) for p in _images_in(d)]
    source = f"{root} (one folder per person)"
    df = validate_manifest(pd.DataFrame(rows, columns=["image", "subject"]), source)
    return Dataset(root=root, manifest=_check_inside(df, root, source), source=source, name=root.name)


def from_utkface(root: Path) -> Dataset:
    """UTKFace names ``age_gender_race_date.jpg`` (gender 0 male / 1 female; race 0..4).

    UTKFace has no identities; each image is its own subject, which is enough for the
    leakage probe but not for the identity probe.
    """
    rows = []
    for p in _images_in(root):
        m = UTK_PATTERN.match(p.name)
        if not m:
            continue
        rows.append({"image": p.name, "subject": p.name.split(".")[0], "age": float(m.group(1)),
                     "sex": "male" if m.group(2) == "0" else "female", "race": UTK_RACES[int(m.group(3))]})
    source = f"{root} (UTKFace file names)"
    df = validate_manifest(pd.DataFrame(rows, columns=["image", "subject", "age", "sex", "race"]), source)
    return Dataset(root=root, manifest=_check_inside(df, root, source), source=source, name=root.name)


def load(path: str | Path) -> Dataset:
    """Load a dataset from a manifest file or a folder (manifest, person folders or UTKFace)."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: dataset not found")
    if path.is_file():
        if path.suffix.lower() not in (".csv", ".parquet"):
            raise DatasetError(f"{path}: a manifest must be .csv or .parquet")
        return from_manifest(path)
    for name in MANIFEST_NAMES:
        if (path / name).is_file():
            return from_manifest(path / name, path)
    if any(d.is_dir() and _images_in(d) for d in path.iterdir()):
        return from_person_folders(path)
    files = _images_in(path)
    if files and any(UTK_PATTERN.match(p.name) for p in files):
        return from_utkface(path)
    raise DatasetError(f"{path}: no manifest.csv/manifest.parquet, no per-person folders and no UTKFace-named images "
                       "(empty dataset)")
