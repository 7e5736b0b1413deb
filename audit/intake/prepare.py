"""``faceaudit prepare``: an aligned copy of a dataset, for users who want to look before auditing.

Writes, into a new or empty folder:

* one aligned face per usable photo (PNG, lossless), at the source's relative path with ``.png``;
* ``manifest.csv``: the source manifest's columns (attributes included) for those faces, with ``image``
  pointing at the aligned copy and ``lm0_x..lm4_y`` at the template positions (the faces are aligned, so
  loading the folder again aligns with the identity transform);
* ``quality.csv``: every photo that could not be used (and every ``multiple_faces`` choice) with its
  manifest row, problem and detail;
* ``prepare.json``: the source, the detector and its threshold.

Images are processed one at a time (no whole dataset in memory). The copy is built in a hidden sibling
folder ``.NAME.partial-<pid>-<random>`` beside ``--out`` and renamed into place only when complete (an empty
``--out`` is removed first), so ``--out`` either holds the whole copy or does not exist: an interrupted or
failed prepare leaves nothing there, and the partial folder is removed on any error; one left by a killed
prepare is removed by the next prepare to the same ``--out``. When no photo is usable
the result is a one-line error and nothing is written. ``--out`` inside the source dataset folder is refused
(the copy would become part of the dataset it copies).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from glob import escape as glob_escape
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import pandas as pd

from audit.atomic import write_atomic
from audit.csvout import safe_csv
from audit.data.images import align_one, template_for
from audit.data.manifest import LANDMARK_COLUMNS
from audit.errors import ConfigError, DatasetError


@dataclass(frozen=True)
class Prepared:
    out: Path
    images: int
    persons: int
    failed: int
    """Failures to acquire (no face, low confidence)."""
    other: int
    """Other unusable images (missing, unreadable, bad landmarks...)."""


def _target(image: str, path: str, root: Path, used: set[str]) -> str:
    """Where the aligned copy of a manifest image goes in the output folder: the manifest path ``image`` with its
    ``..`` resolved against the dataset ``root`` without following links (``x/../img/a.jpg`` and ``../ds/img/a.jpg`` in
    a folder ``ds`` are both ``img/a.jpg``; an annexed photo keeps its name, not its link target's), or, where that
    leaves the root (a root reached through a link), the loader's resolved ``path`` inside the resolved root; as a
    PNG, renamed when another photo already took that name (compared without case). Until 0.11.0 the path was kept
    as the manifest spelt it, and ``../ds/img/a.png`` wrote through the ``..``: over the source photo (a review of the
    input handling)."""
    base = Path(os.path.abspath(root))
    lexical = Path(os.path.normpath(base / image.replace("\\", "/")))
    try:
        rel = PurePosixPath(lexical.relative_to(base).as_posix())
    except ValueError:
        rel = PurePosixPath(Path(path).relative_to(Path(root).resolve()).as_posix())  # inside: the loader checked
    name, k = str(rel.with_suffix(".png")), 1
    while name.casefold() in used:  # 'a.jpg' beside 'a.png', two spellings of one path, or 'A.png' beside 'a.png'
        name = str(rel.with_name(f"{rel.stem}.{k}.png" if k > 1 else rel.name + ".png"))
        k += 1
    used.add(name.casefold())
    return name


def prepare(dataset, out: Path, size: int = 112) -> Prepared:
    """Write the aligned copy of ``dataset`` (a :class:`audit.data.Dataset` with its detector set) to ``out``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file; give a new or empty folder")
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out {out}: the folder is not empty; give a new or empty folder (prepare never "
                          "overwrites)")
    if out.resolve().is_relative_to(Path(dataset.root).resolve()):
        raise ConfigError(f"--out {out}: is inside the source dataset folder {dataset.root}; give a folder outside "
                          "it (the copy would become part of the dataset)")
    if not 16 <= size <= 1024:
        raise ConfigError(f"--size: must be between 16 and 1024 pixels, got {size}")
    out = out.absolute()
    _remove_stale(out)
    work = out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        work.mkdir()
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot create folder: {exc.strerror}") from None
    try:
        res = _write(dataset, work, size)
        if out.exists():
            out.rmdir()  # empty (checked above); fails, and so keeps it, if something appeared in it meanwhile
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return Prepared(out, *res)


def _remove_stale(out: Path) -> None:
    """Remove the partial folders a killed prepare left beside ``out``: those of a process that no longer runs
    (the pid is in the name), and older ones (no pid in the name) untouched for a day."""
    import re
    import time

    from audit.store.db import _pid_alive

    if not out.parent.is_dir():
        return
    for p in out.parent.glob(f".{glob_escape(out.name)}.partial-*"):
        m = re.fullmatch(r"\.(?:.*)\.partial-(\d+)-[0-9a-f]{12}", p.name)
        try:
            stale = not _pid_alive(int(m.group(1))) if m else time.time() - p.stat().st_mtime > 86400
        except OSError:
            continue
        if stale and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)


def _write(dataset, out: Path, size: int) -> tuple[int, int, int, int]:
    """Write the copy into ``out`` (the partial folder); (images, persons, failed, other)."""
    lms, names, known, noted = dataset.landmark_plan()
    m = dataset.manifest
    template = template_for((size, size))
    rows, quality, used = [], [], set()
    root = Path(dataset.root)
    for i, (path, image) in enumerate(zip(m["_path"], m["image"])):
        issue = known.get(i)
        face = pts = None
        if issue is None:
            face, pts, issue = align_one(Path(path), i + 1, image, None if lms is None else lms[i], (size, size))
        if issue is not None:
            quality.append(issue)
            continue
        target = _target(image, path, root, used)
        dest = out / target
        dest.parent.mkdir(parents=True, exist_ok=True)
        ok, png = cv2.imencode(".png", np.ascontiguousarray(face[..., ::-1]))
        write_atomic(dest, png.tobytes())
        row = {c: m.at[i, c] for c in m.columns if c != "_path" and c not in LANDMARK_COLUMNS
               and not c.startswith("pt_")}
        row["image"] = target
        for k in range(5):
            row[f"lm{k}_x"], row[f"lm{k}_y"] = round(float(template[k, 0]), 4), round(float(template[k, 1]), 4)
        for k, name in enumerate(names[5:], start=5):  # extra manifest points, mapped into the aligned face
            row[f"pt_{name}_x"], row[f"pt_{name}_y"] = round(float(pts[k, 0]), 4), round(float(pts[k, 1]), 4)
        rows.append(row)
    quality = sorted(quality + noted, key=lambda q: q.row)
    if not rows:
        first = next((q for q in quality if q.excludes), None)
        what = f" (first problem: {first.image}: {first.detail})" if first else ""
        raise DatasetError(f"{dataset.source}: none of the {len(m)} images could be used{what}; nothing was written")
    qdf = pd.DataFrame([{"row": q.row, "image": q.image, "problem": q.problem, "detail": q.detail} for q in quality],
                       columns=["row", "image", "problem", "detail"])
    write_atomic(out / "quality.csv", safe_csv(qdf))  # for a person with a spreadsheet: never a formula
    acq = dataset.acquisition()
    meta = {"source": dataset.source, "source_fingerprint": dataset.fingerprint, "size": size,
            "landmarks": "detector" if acq is not None else ("manifest" if lms is not None else "none (pre-aligned)"),
            "detector": acq.detector if acq is not None else None,
            "min_confidence": dataset.min_confidence if acq is not None else None}
    write_atomic(out / "prepare.json", json.dumps(meta, indent=2, sort_keys=True).encode())
    write_atomic(out / "manifest.csv", pd.DataFrame(rows).to_csv(index=False).encode())
    from audit.records import FAILURES

    failed = sum(1 for q in quality if q.problem in FAILURES)
    persons = len({r["subject"] for r in rows})
    return len(rows), persons, failed, sum(1 for q in quality if q.excludes) - failed
