"""Demographic labels from a separate file, joined to a dataset on ``image`` or ``subject``.

Auditors often hold labels apart from the images. A labels file (CSV or Parquet) has a key
column - ``image`` (one row per image) or ``subject`` (one row per person) - and attribute
columns, validated like the manifest's (``age`` in years 0-120; other columns categorical).
Nothing is silently dropped or overridden: a column present in both files, a duplicated key,
or a landmark column in the labels file is an error naming the file, row and column; label
rows whose key matches nothing in the dataset become ``label_unmatched`` data-quality records;
images without a label keep an empty value (the probes leave them out of that attribute).
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from audit.data.images import QualityIssue
from audit.data.loaders import Dataset
from audit.data.manifest import (LANDMARK_COLUMNS, MANIFEST_SCHEMA, _describe, check_groups, judged_names,
                                 read_csv_table, read_missing, refuse_bad_names, separator_hint, tidy_names)
from audit.errors import DatasetError, FaceAuditWarning

KEYS = ("image", "subject")


def read_labels(path: Path) -> pd.DataFrame:
    if path.is_dir():
        raise DatasetError(f"--labels {path}: is a folder; give the labels file itself (CSV or Parquet)")
    if not path.is_file():
        raise DatasetError(f"--labels {path}: no such file")
    try:
        if path.suffix.lower() == ".parquet":
            df = read_missing(pd.read_parquet(path), str(path))
        else:  # columns named twice or not at all, and rows with more fields than the header, are refused
            df = read_csv_table(path, encoding="utf-8")
    except DatasetError:
        raise
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text (byte {exc.start}); save the labels file as UTF-8") from None
    except Exception as exc:
        raise DatasetError(f"{path}: cannot read labels ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") \
            from None
    refuse_bad_names([str(c) for c in df.columns], str(path))  # a Parquet file's names too
    if len(df) == 0:
        raise DatasetError(f"{path}: the labels file has no rows")
    return df.reset_index(drop=True)  # rows are positions: messages count them from 1


def join_labels(dataset: Dataset, path: str | Path) -> tuple[Dataset, list[QualityIssue]]:
    """The dataset with the labels file's attribute columns, and the label rows that matched nothing."""
    path = Path(path)
    source = str(path)
    labels = read_labels(path)
    refuse_bad_names([str(c) for c in labels.columns], source, taken=dataset.manifest.columns)
    labels = judged_names(labels, source, taken=set(dataset.manifest.columns))
    key = next((k for k in KEYS if k in labels.columns), None)
    if key is None:
        raise DatasetError(f"{source}: needs an 'image' or a 'subject' column to join on (columns are "
                           f"{list(labels.columns)})" + separator_hint(labels.columns))
    other_key = [k for k in KEYS if k != key and k in labels.columns]
    attrs = [c for c in labels.columns if c not in KEYS]
    bad = [c for c in attrs if c in LANDMARK_COLUMNS or c.startswith(("pt_", "_"))]
    if bad:
        raise DatasetError(f"{source}: column '{bad[0]}' is not an attribute; a labels file holds only "
                           f"'{key}' and attribute columns")
    if not attrs:
        raise DatasetError(f"{source}: no attribute columns besides '{key}'")
    both = [c for c in attrs if c in dataset.manifest.columns]
    if both:
        raise DatasetError(f"{source}: column '{both[0]}' is in both the manifest and the labels file; keep it in "
                           "one of them (faceaudit never chooses between two sources of a label)")
    if key == "image" and other_key:  # a subject-keyed file's 'image' names one photo of the person: nothing per row
        _check_subjects(dataset, labels, source)
    schema = pa.DataFrameSchema({key: pa.Column(str, pa.Check.str_length(min_value=1), nullable=False, coerce=True),
                                 **{c: s for c, s in MANIFEST_SCHEMA.columns.items() if c in attrs}},
                                strict=False, name="labels")
    try:
        labels = schema.validate(labels.drop(columns=other_key), lazy=True)
    except pa.errors.SchemaErrors as exc:
        raise DatasetError(_describe(exc.failure_cases, source)) from None
    labels = tidy_names(labels, source)
    check_groups(labels, source)
    dup = labels.duplicated(subset=[key], keep="first")
    if dup.any():
        rows = [int(pos) + 1 for pos in dup.to_numpy().nonzero()[0][:5]]  # positions, whatever the index
        raise DatasetError(f"{source}: rows {rows}, column '{key}': {labels.loc[dup, key].iloc[0]!r} appears more "
                           f"than once; give one label row per {key}")
    known = set(dataset.manifest[key].astype(str))
    issues = [QualityIssue(image=f"{path.name}:{k}", row=n, problem="label_unmatched",
                           detail=f"labels row {n}: {key} {k!r} matches no {key} in the dataset")
              for n, k in enumerate(labels[key], 1) if k not in known]
    _report_match(dataset, labels, key, len(issues), source)
    manifest = dataset.manifest.merge(labels, on=key, how="left", validate="many_to_one")
    joined = replace(dataset, manifest=manifest, source=f"{dataset.source} + labels {path}", _dataset_id=None,
                     _fingerprint=None, _faces={}, label_issues=issues)
    return joined, issues


def _check_subjects(dataset: Dataset, labels: pd.DataFrame, source: str) -> None:
    """A labels file keyed by image that also names each image's person must agree with the manifest on it: two files
    that disagree on who is in a photo are a labelling error, not a column to drop (it was dropped unread until
    0.11.0; a review of the input handling)."""
    have = dataset.manifest.drop_duplicates("image").set_index("image")["subject"].astype(str)
    given = labels[["image", "subject"]].dropna()
    given = given[given["image"].astype(str).isin(have.index)]
    said = given["subject"].astype(str).str.strip().str.normalize("NFC")  # as the manifest's ids are read
    differ = said.to_numpy() != have.loc[given["image"].astype(str)].to_numpy()
    if differ.any():
        pos = int(np.flatnonzero(differ)[0])
        row = int(given.index[pos]) + 1
        image, said = given["image"].iloc[pos], given["subject"].iloc[pos]
        raise DatasetError(f"{source}: row {row}, column 'subject': {str(said)!r:.80} for image {str(image)!r:.80}, "
                           f"where the manifest has {have[str(image)]!r:.80}; the two files disagree on who is in the "
                           "photo (drop the column, or correct one of them)")


def _report_match(dataset: Dataset, labels: pd.DataFrame, key: str, unmatched: int, source: str) -> None:
    """No label row matching the dataset is an error (a wrong key would leave every attribute rule not
    applicable, silently); a partial match is one warning line with the counts."""
    keys = dataset.manifest[key].astype(str)
    labelled = int(keys.isin(set(labels[key])).sum())
    if labelled == 0:
        sample = ", ".join(repr(k) for k in labels[key].head(2))
        raise DatasetError(f"{source}: no label row matches the dataset on '{key}' (labels have {sample}; the dataset "
                           f"has {keys.iloc[0]!r}); check the key column")
    if unmatched or labelled < len(keys):
        warnings.warn(FaceAuditWarning(
            f"{source}: labels joined to {labelled} of {len(keys)} images on '{key}'; {unmatched} of {len(labels)} "
            "label rows match nothing (listed as data-quality records), unlabelled images are left out of those "
            "attributes"), stacklevel=3)
