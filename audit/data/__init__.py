"""Datasets (manifests, loaders, alignment, splits); imports only records, config, errors and one-file helpers."""

from audit.data.images import ARCFACE_TEMPLATE, QualityIssue, align, template_for
from audit.data.loaders import Dataset, Faces, load
from audit.data.manifest import LANDMARK_COLUMNS, attribute_columns, is_regression, validate_manifest
from audit.data.split import subject_folds, subject_split

__all__ = ["ARCFACE_TEMPLATE", "QualityIssue", "align", "template_for", "Dataset", "Faces", "load",
           "LANDMARK_COLUMNS", "attribute_columns", "is_regression", "validate_manifest", "subject_folds",
           "subject_split"]
