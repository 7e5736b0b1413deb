"""Intake of raw photos: face detection (built-in MTCNN or a user ONNX detector), landmark cache,
failure-to-acquire measurement, and ``faceaudit prepare`` (aligned copies plus a manifest); may import models,
data, records, config, errors and the one-file helpers, never probes, run or anything above them.

:func:`load` loads a dataset whose faces a detector may find (:mod:`audit.intake.finder`)."""

from audit.intake.finder import load

__all__ = ["load"]
