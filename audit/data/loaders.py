"""Dataset loaders: manifest + folder, one folder per person (LFW style), UTKFace names.

``load(path)`` returns a :class:`Dataset` with a validated manifest; ``Dataset.faces(size)``
decodes and aligns the images (cached), listing unusable images as quality issues.

Where the five landmarks come from is the dataset's ``detector`` setting: ``auto`` (the manifest's
landmark columns when present, else the built-in detector), ``none`` (the manifest's landmarks, else the
images are taken as pre-aligned faces and resized), ``mtcnn`` or a detector ONNX path (always detect).
Detection itself belongs to the floor above, :mod:`audit.intake`: a dataset whose faces a detector finds
is loaded with :func:`audit.intake.load`, which attaches the :class:`FaceFinder` this module only calls.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np
import pandas as pd

from audit.data.images import QualityIssue, aligned_points, header_pixels, load_aligned, screen
from audit.data.manifest import (LANDMARK_COLUMNS, attribute_columns, read_manifest, refuse_duplicate_images,
                                 validate_manifest)
from audit.errors import DatasetError
from audit.records import FAILURES

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
MANIFEST_NAMES = ("manifest.csv", "manifest.parquet")
UTK_PATTERN = re.compile(r"^(\d{1,3})_([01])_([0-4])_(\d+)\.jpg(\.chip\.jpg)?$", re.IGNORECASE)
UTK_RACES = ["white", "black", "asian", "indian", "other"]
OUTSIDE_ROOT = "{source}: row {row}, column 'image': path {image!r} resolves outside the dataset root {root}"
NO_FINDER = ("{source}: the faces must be found by a detector (--detector {detector}), and this dataset was loaded "
             "without one; load it with audit.intake.load")


CHUNK = 512
"""Faces decoded (and transformed by a condition, and embedded) at a time. A constant, not the inference batch
size: ``freqmix`` draws the faces it mixes from the same chunk, so the chunking is part of the result."""


@dataclass(frozen=True)
class Faces:
    """The usable faces of a dataset, by manifest row. Pixels are decoded on demand and never all at once:
    a run keeps every face's row and aligned points, and the pixels of the faces one step is working on
    (:meth:`load`, :meth:`chunks`)."""

    landmarks: np.ndarray
    """(N, K, 2) point positions in aligned-face pixels: the 5 ArcFace landmarks, then any
    extra points named in :attr:`point_names`."""
    rows: np.ndarray
    """Manifest row index (0-based) of each face."""
    issues: list[QualityIssue]
    point_names: tuple[str, ...]
    reader: Callable[[np.ndarray], tuple[np.ndarray, list[QualityIssue]]] | None = field(default=None, repr=False)
    """Manifest rows -> (aligned faces (n, H, W, 3) uint8 RGB of the usable ones, problems of the others)."""
    pixels: np.ndarray | None = field(default=None, repr=False)
    """Faces held in memory instead of a reader (small sets built in code)."""

    def __len__(self) -> int:
        return len(self.rows)

    def load(self, idx) -> np.ndarray:
        """Aligned faces (n, H, W, 3) uint8 RGB at positions ``idx`` (not manifest rows), decoded now."""
        idx = np.asarray(idx, dtype=np.int64)
        if self.pixels is not None:
            return self.pixels[idx]
        imgs, issues = self.reader(self.rows[idx])
        if issues:  # only faces that decoded when the set was verified (:meth:`verified`) reach here
            raise DatasetError(f"{issues[0].image}: {issues[0].detail} (the file changed during the run)")
        return imgs

    @property
    def images(self) -> np.ndarray:
        """Every face, decoded into one array: for small sets only (runs use :meth:`load` and :meth:`chunks`)."""
        return self.load(np.arange(len(self.rows)))

    def blocks(self, size: int = CHUNK) -> list[np.ndarray]:
        """Positions of consecutive blocks of ``size`` faces (the last may be shorter): block ``k`` holds
        positions ``k * size`` onwards."""
        return [np.arange(start, min(start + size, len(self.rows))) for start in range(0, len(self.rows), size)]

    def chunks(self, size: int = CHUNK, prefetch: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(positions, faces) of each of :meth:`blocks`. With ``prefetch`` the next block is decoded in a
        background thread while the caller works on this one (at most two blocks in memory); the blocks are
        the same either way."""
        blocks = self.blocks(size)
        if not prefetch or len(blocks) < 2:
            for idx in blocks:
                yield idx, self.load(idx)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="faceaudit-prefetch") as pool:
            pending = pool.submit(self.load, blocks[0])
            try:
                for k, idx in enumerate(blocks):
                    images = pending.result()
                    if k + 1 < len(blocks):
                        pending = pool.submit(self.load, blocks[k + 1])
                    yield idx, images
            finally:  # the caller stopped early (a cancelled run): do not decode further blocks
                pending.cancel()

    def take(self, keep: np.ndarray) -> "Faces":
        """The faces at positions (or a boolean mask) ``keep``."""
        return replace(self, landmarks=self.landmarks[keep], rows=self.rows[keep],
                       pixels=None if self.pixels is None else self.pixels[keep])

    def verified(self) -> "Faces":
        """Decode every face once, in chunks, keeping none of the pixels: faces whose file does not decode (or
        decodes to a shape their landmarks do not fit) are dropped and listed in :attr:`issues`."""
        if self.pixels is not None:
            return self
        bad: list[QualityIssue] = []
        for idx in self.blocks():
            bad += self.reader(self.rows[idx])[1]
        if not bad:
            return self
        drop = {i.row - 1 for i in bad}
        out = self.take(np.array([r not in drop for r in self.rows], dtype=bool))
        return replace(out, issues=sorted(self.issues + bad, key=lambda i: i.row))


class FaceFinder(Protocol):
    """Finds the faces in a dataset's photos when its landmarks do not come from the manifest. The intake floor
    provides it (:class:`audit.intake.finder.Finder`); the data floor only calls it."""

    def resolve(self, spec: str):
        """The detector ``spec`` (``--detector``) names."""

    def key(self, detector, min_confidence: float) -> str:
        """What the aligned faces depend on besides the files: the detector's key and the threshold."""

    def acquire(self, dataset: "Dataset", detector):
        """Detections for every manifest row (:class:`audit.intake.acquire.Acquisition`)."""


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
    detector: str = "auto"
    """``auto``, ``none``, ``mtcnn`` or a detector ONNX path (see the module docstring)."""
    min_confidence: float = 0.9
    """Detections below this confidence are failures to acquire (``low_confidence``)."""
    _hashes: list | None = field(default=None, repr=False)
    _fingerprint: str | None = field(default=None, repr=False)
    _detector_obj: object = field(default=None, repr=False)
    _acquisition: object = field(default=None, repr=False)
    finder: FaceFinder | None = field(default=None, repr=False)
    """Finds the faces when a detector is used (attached by :func:`audit.intake.load`)."""

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
    def file_hashes(self) -> list[str | None]:
        """SHA-256 of each image file (None: missing or unreadable), in manifest order."""
        if self._hashes is None:
            out = []
            for p in self.manifest["_path"]:
                try:
                    out.append(hashlib.sha256(Path(p).read_bytes()).hexdigest())
                except OSError:
                    out.append(None)
            self._hashes = out
        return self._hashes

    @property
    def fingerprint(self) -> str:
        """SHA-256 over the manifest content and every image file's bytes (memoised: read for the dataset id and
        again for the run's inputs)."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(self.manifest.drop(columns=["_path"]).to_csv(index=False).encode())
            for digest in self.file_hashes:
                h.update(bytes.fromhex(digest) if digest else b"<missing>")
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    @property
    def uses_detector(self) -> bool:
        """Whether faces are found by a detector (else manifest landmarks, or pre-aligned)."""
        return self.detector != "none" and not (self.detector == "auto" and self.has_landmarks)

    def detector_obj(self):
        """The detector this dataset's faces are found with (None when no detector is used)."""
        if self._detector_obj is None and self.uses_detector:
            self._detector_obj = self._finder().resolve(self.detector)
        return self._detector_obj

    def _finder(self) -> FaceFinder:
        if self.finder is None:
            raise DatasetError(NO_FINDER.format(source=self.source, detector=self.detector))
        return self.finder

    @property
    def acquisition_key(self) -> str:
        """What the aligned faces depend on besides the files: the detector's key and threshold ('' when no
        detector is used)."""
        det = self.detector_obj()
        if det is None:
            return ""
        return self._finder().key(det, self.min_confidence)

    @property
    def dataset_id(self) -> str:
        """The :attr:`fingerprint`; when faces are found by a detector, SHA-256 of the fingerprint and the
        :attr:`acquisition_key`, since the faces every probe sees (and the failures to acquire) depend on it.
        It is then *not* the file fingerprint: a run records that too (``inputs['files']``) and evidence names
        both (:func:`audit.evidence.dataset_identity`)."""
        if self._dataset_id is None:
            key = self.acquisition_key
            self._dataset_id = self.fingerprint if not key else \
                hashlib.sha256(f"{self.fingerprint}\n{key}".encode()).hexdigest()
        return self._dataset_id

    def acquisition(self):
        """Detections for every image (:class:`audit.intake.acquire.Acquisition`), or None without a detector."""
        det = self.detector_obj()
        if det is None:
            return None
        if self._acquisition is None:
            self._acquisition = self._finder().acquire(self, det)
        return self._acquisition

    def landmark_plan(self) -> tuple[np.ndarray | None, tuple[str, ...], dict[int, QualityIssue], list[QualityIssue]]:
        """``(landmarks, point names, known, noted)``: the (N, K, 2) source-image points to align with (None:
        pre-aligned), their names, problems that exclude rows before reading (failures to acquire, by 0-based
        row) and problems recorded while the image is used (``multiple_faces``)."""
        names = self.point_names
        acq = self.acquisition()
        if acq is not None:  # detected points; extra manifest points do not follow a detected face
            return (acq.landmarks, names[:5], {i.row - 1: i for i in acq.issues if i.excludes},
                    [i for i in acq.issues if not i.excludes])
        if self.has_landmarks:
            cols = LANDMARK_COLUMNS + [f"pt_{n}_{ax}" for n in names[5:] for ax in ("x", "y")]
            return self.manifest[cols].to_numpy(np.float64).reshape(len(self.manifest), -1, 2), names, {}, []
        return None, names[:5], {}, []

    def _copies(self, bad: set[int]) -> list[QualityIssue]:
        """A data-quality record for each usable image whose file has the same bytes as an earlier usable one, and one
        warning line. Under the same person (``duplicate_content``) the copy is still used: a genuine pair of a photo
        with itself, a perfect score the record names. Under another person (``duplicate_other_person``) it is left
        out: an impostor pair that is one face scores as high as a pair can, sits in the impostor tail the system
        threshold is set on, and so raises the threshold and lowers every rate measured at it (risk understated);
        one of the two labels is wrong, and which is the auditor's call."""
        first: dict[str, int] = {}
        out = []
        subjects, names = self.manifest["subject"].astype(str).tolist(), self.manifest["image"].tolist()
        for r, digest in enumerate(self.file_hashes):
            if digest is None or r in bad:
                continue
            j = first.setdefault(digest, r)
            if j != r and header_pixels(Path(self.manifest["_path"].iloc[r])) is not None:  # an image, not junk
                same = subjects[j] == subjects[r]
                other = "" if same else \
                    f", listed under another person ({subjects[j]!r}): one of the two labels is wrong; left out"
                out.append(QualityIssue(names[r], r + 1, "duplicate_content" if same else "duplicate_other_person",
                                        f"the same file content as row {j + 1} ({names[j]!r}){other}"))
        if out:
            import warnings

            from audit.errors import FaceAuditWarning

            across = sum(i.problem == "duplicate_other_person" for i in out)
            warnings.warn(FaceAuditWarning(
                f"{self.source}: {len(out)} image(s) are byte-identical copies of earlier ones ({across} under another "
                f"person, left out; first: {out[0].image}, row {out[0].row}: {out[0].detail}); copies of one "
                "person's photo are used as listed (a genuine pair of a photo with itself): remove the copies or "
                "correct the labels"), stacklevel=2)
        return out

    def faces(self, size: tuple[int, int] = (112, 112), verify: bool = True) -> Faces:
        """The usable images as :class:`Faces` of ``size``. Files that are missing, empty or too large, or whose
        landmarks do not fit the size their header declares, are left out and listed without decoding anything;
        with ``verify`` every remaining image is then decoded once (in chunks, keeping no pixels) to find those
        that do not decode (:meth:`Faces.verified`). A run screens the whole dataset, takes its budget, and
        verifies only the faces it uses. Memoised per size."""
        key = tuple(size)
        if key not in self._faces:
            lms, names, known, noted = self.landmark_plan()
            paths = [Path(p) for p in self.manifest["_path"]]
            image_names = self.manifest["image"].tolist()
            workers = min(8, (os.cpu_count() or 2) * 2)
            issues = screen(paths, image_names, lms, workers=workers, known=known)
            bad = {i.row - 1 for i in issues if i.excludes}
            issues += self._copies(bad)
            bad |= {i.row - 1 for i in issues if i.excludes}  # a copy under another person is left out
            issues = sorted(issues + noted, key=lambda i: i.row)
            rows = np.array([r for r in range(len(self.manifest)) if r not in bad], dtype=np.int64)

            def reader(which: np.ndarray) -> tuple[np.ndarray, list[QualityIssue]]:
                sel = [int(r) for r in which]
                imgs, _, problems = load_aligned([paths[r] for r in sel], [image_names[r] for r in sel],
                                                 None if lms is None else lms[sel], key, workers=workers)
                # load_aligned numbers rows within the batch; name the manifest row
                return imgs, [replace(i, row=sel[i.row - 1] + 1) for i in problems]

            points = np.stack([aligned_points(None if lms is None else lms[r], key) for r in rows]) if len(rows) \
                else np.zeros((0, len(names), 2), np.float32)
            self._faces[key] = self.usable(Faces(landmarks=points, rows=rows, issues=issues, point_names=names,
                                                 reader=reader))
        if not verify:
            return self._faces[key]
        if (key, "verified") not in self._faces:
            self._faces[key, "verified"] = self.usable(self._faces[key].verified())
        return self._faces[key, "verified"]

    def usable(self, faces: Faces) -> Faces:
        """``faces``, or a one-line :class:`DatasetError` when none of the images could be used."""
        if len(faces.rows):
            return faces
        first = next(i for i in faces.issues if i.excludes)
        hint = ("; if the images are already aligned face crops, use --detector none"
                if self._acquisition is not None and first.problem in FAILURES else "")
        raise DatasetError(f"{self.source}: none of the {len(self.manifest)} images could be read or used "
                           f"(first problem: {first.image}: {first.detail}){hint}")


def _check_inside(df: pd.DataFrame, root: Path, source: str) -> pd.DataFrame:
    """The manifest with ``_path``, each image's resolved path: every one inside ``root``, and each file named by
    one row only (``img/a.png`` and ``./img/a.png`` are one file; two rows for it would pair the file with itself)."""
    root = root.resolve()
    paths = []
    for i, image in enumerate(df["image"]):
        if "\x00" in image:  # the OS cannot name such a file; Path.resolve would raise ValueError
            raise DatasetError(f"{source}: row {i + 1}, column 'image': {image!r} contains a NUL character")
        p = Path(image)
        target = (root / p).resolve()
        if p.is_absolute() and target.is_relative_to(root):
            raise DatasetError(f"{source}: row {i + 1}, column 'image': {image!r} is an absolute path; give it "
                               f"relative to the dataset root {root} ({str(target.relative_to(root))!r})")
        if p.is_absolute() or not target.is_relative_to(root):
            raise DatasetError(OUTSIDE_ROOT.format(source=source, row=i + 1, image=image, root=root))
        paths.append(str(target))
    refuse_duplicate_images(paths, df["image"].tolist(), source)
    df = df.copy()
    df["_path"] = paths
    return df


def from_manifest(manifest_path: Path, root: Path | None = None) -> Dataset:
    root = root or manifest_path.parent
    df = validate_manifest(read_manifest(manifest_path), str(manifest_path))
    df = _check_inside(df, root, str(manifest_path))
    return Dataset(root=root, manifest=df, source=str(manifest_path), name=root.name)


def _is_image(p: Path) -> bool:
    """An image file by its suffix; hidden ones (``.DS_Store``, macOS's ``._name.jpg``) are not."""
    return p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")


def _images_in(folder: Path) -> list[Path]:
    """The image files directly in ``folder`` (:func:`_is_image`)."""
    return sorted(p for p in folder.iterdir() if _is_image(p))


def _left_aside(root: Path, people: list[Path]) -> None:
    """One warning line for what a person-folder dataset does not read (nothing is dropped without a word): images
    beside the person folders and images in folders inside a person's folder."""
    import warnings

    from audit.errors import FaceAuditWarning

    loose = _images_in(root)
    nested = [p for d in people for sub in d.iterdir() if sub.is_dir() and not sub.name.startswith(".")
              for p in sub.rglob("*") if _is_image(p)]
    parts = ([f"{len(loose)} image(s) beside the person folders (first: {loose[0].name})"] if loose else []) + \
        ([f"{len(nested)} image(s) in folders inside a person's folder (first: {nested[0].relative_to(root)})"]
         if nested else [])
    if parts:
        warnings.warn(FaceAuditWarning(f"{root} (one folder per person): not read: {'; '.join(parts)}; each person's "
                                       "images must lie directly in their folder (or list the images in a "
                                       "manifest.csv)"), stacklevel=3)


def from_person_folders(root: Path) -> Dataset:
    """LFW style: ``root/<person>/<image>``; the folder name is the subject."""
    people = sorted(x for x in root.iterdir() if x.is_dir() and not x.name.startswith("."))
    _left_aside(root, people)
    rows = [{"image": str(p.relative_to(root)), "subject": d.name} for d in people for p in _images_in(d)]
    source = f"{root} (one folder per person)"
    df = validate_manifest(pd.DataFrame(rows, columns=["image", "subject"]), source)
    return Dataset(root=root, manifest=_check_inside(df, root, source), source=source, name=root.name)


def from_utkface(root: Path) -> Dataset:
    """UTKFace names ``age_gender_race_date.jpg`` (gender 0 male / 1 female; race 0..4).

    UTKFace has no identities; each image is its own subject, which is enough for the
    leakage probe but not for the identity probe.
    """
    rows, other = [], []
    for p in _images_in(root):
        m = UTK_PATTERN.match(p.name)
        if not m:
            other.append(p.name)
            continue
        rows.append({"image": p.name, "subject": p.name.split(".")[0], "age": float(m.group(1)),
                     "sex": "male" if m.group(2) == "0" else "female", "race": UTK_RACES[int(m.group(3))]})
    source = f"{root} (UTKFace file names)"
    if other:  # said, as the person-folder loader says what it leaves aside (a review of the intake)
        import warnings

        from audit.errors import FaceAuditWarning

        warnings.warn(FaceAuditWarning(f"{source}: not read: {len(other)} image(s) whose names are not "
                                       f"age_gender_race_date.jpg (first: {other[0]}); rename them or list the images "
                                       "in a manifest.csv"), stacklevel=3)
    df = validate_manifest(pd.DataFrame(rows, columns=["image", "subject", "age", "sex", "race"]), source)
    return Dataset(root=root, manifest=_check_inside(df, root, source), source=source, name=root.name)


def load(path: str | Path, detector: str = "auto", min_confidence: float = 0.9) -> Dataset:
    """Load a dataset from a manifest file or a folder (manifest, person folders or UTKFace); ``detector``
    and ``min_confidence`` say where the landmarks come from (see the module docstring)."""
    ds = _load(Path(path))
    ds.detector, ds.min_confidence = str(detector), float(min_confidence)
    return ds


def _load(path: Path) -> Dataset:
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
