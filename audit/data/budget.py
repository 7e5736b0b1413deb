"""How many of a person's images a run uses.

A few persons can own many photos (in LFW three people of 300 hold 374 of the 2,400 images a quick run
takes). Every per-image statistic (FNMR, attack accuracy, SAR) would then lean on those few persons, and the
person bootstrap's intervals turn wide and lumpy, since drawing one of them or not moves the estimate a lot.
The presets cap the images of each person instead (``max_images_per_subject``): the estimators stay what
they are (shares of images, comparisons, persons' images), each person's weight is bounded, and the report
says how many persons and images the cap left out. Weighting persons equally was not chosen: it changes what
every rate means (a share of persons' averages, not of comparisons) and what the rules' thresholds refer to.
"""

from __future__ import annotations

import numpy as np

from audit.data.loaders import Dataset, Faces
from audit.seeding import rng_for


def cap_per_person(faces: Faces, dataset: Dataset, per_person: int | None, seed: int) -> Faces:
    """At most ``per_person`` images of each person, drawn with the run's seed and kept in file order (the
    person's first kept image is still the identity probe's gallery image); ``None`` keeps every image."""
    if per_person is None:
        return faces
    subjects = dataset.manifest["subject"].to_numpy()[faces.rows]
    uniq, inverse, counts = np.unique(subjects, return_inverse=True, return_counts=True)
    heavy = np.flatnonzero(counts > per_person)
    if not len(heavy):
        return faces
    keep = np.ones(len(subjects), dtype=bool)
    rng = rng_for(seed, "images-per-person")
    for h in heavy:
        keep[rng.permutation(np.flatnonzero(inverse == h))[per_person:]] = False
    return faces.take(keep)


def capped(subjects: np.ndarray, per_person: int | None) -> tuple[int, int]:
    """(persons with more images than the cap, images the cap leaves out) among ``subjects`` (one per image)."""
    if per_person is None:
        return 0, 0
    counts = np.unique(subjects, return_counts=True)[1]
    return int((counts > per_person).sum()), int(np.maximum(counts - per_person, 0).sum())
