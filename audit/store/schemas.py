"""Pandera schemas for every store table, checked before each write.

Column sets must match the tables that ``schema.sql`` plus the migrations create (tests keep them in step).
"""

from __future__ import annotations

import pandera.pandas as pa

RUN_STATUSES = ["running", "completed", "failed", "cancelled", "interrupted"]
FINDING_STATUSES = ["pass", "warn", "fail", "not_applicable"]
DIRECTIONS = ["higher_is_riskier", "lower_is_riskier", "neutral"]

_str = lambda **kw: pa.Column(str, **kw)  # noqa: E731
_int = lambda **kw: pa.Column("int64", **kw)  # noqa: E731
_float = lambda **kw: pa.Column(float, **kw)  # noqa: E731
_ts = lambda **kw: pa.Column("datetime64[ns]", coerce=True, **kw)  # noqa: E731

TABLES: dict[str, pa.DataFrameSchema] = {
    "models": pa.DataFrameSchema({
        "model_id": _str(checks=pa.Check.str_matches(r"^[0-9a-f]{64}$")), "name": _str(), "path": _str(),
        "size_bytes": _int(checks=pa.Check.ge(0)), "opset": _int(), "producer": _str(), "info": _str(),
        "profile": _str(), "added_at": _ts()}, strict=True, name="models"),
    "datasets": pa.DataFrameSchema({
        "dataset_id": _str(checks=pa.Check.str_matches(r"^[0-9a-f]{64}$")), "name": _str(), "source": _str(),
        "n_images": _int(checks=pa.Check.ge(0)), "n_subjects": _int(checks=pa.Check.ge(0)),
        "attributes": _str(), "added_at": _ts()}, strict=True, name="datasets"),
    "data_quality": pa.DataFrameSchema({
        "dataset_id": _str(), "image": _str(), "row_number": _int(checks=pa.Check.ge(1)),
        "problem": _str(checks=pa.Check.isin(["missing", "empty", "unreadable", "too_large", "bad_landmarks",
                                                         "label_unmatched", "no_face", "low_confidence",
                                                         "multiple_faces", "too_small", "duplicate_content",
                                                         "duplicate_other_person"])),
        "detail": _str()}, strict=True, name="data_quality"),
    "runs": pa.DataFrameSchema({
        "run_id": _str(), "model_id": _str(), "dataset_id": _str(),
        "status": _str(checks=pa.Check.isin(RUN_STATUSES)), "config": _str(), "seed": _int(),
        "started_at": _ts(), "finished_at": _ts(nullable=True), "pid": _int(), "host": _str(),
        "error": _str(nullable=True), "environment": _str(), "parity": _str(nullable=True)},
        strict=True, name="runs"),
    "run_probes": pa.DataFrameSchema({
        "run_id": _str(), "probe": _str(), "status": _str(checks=pa.Check.isin(["completed", "failed", "skipped"])),
        "started_at": _ts(), "finished_at": _ts(), "seconds": _float(checks=pa.Check.ge(0)), "message": _str()},
        strict=True, name="run_probes"),
    "metrics": pa.DataFrameSchema({
        "run_id": _str(), "probe": _str(), "condition": _str(), "metric": _str(checks=pa.Check.str_length(min_value=1)),
        "attribute": _str(), "group": _str(), "setting": _str(),
        "value": _float(nullable=True), "ci_low": _float(nullable=True), "ci_high": _float(nullable=True),
        "n": _int(checks=pa.Check.ge(0)), "direction": _str(checks=pa.Check.isin(DIRECTIONS))},
        checks=[pa.Check(lambda d: (d.ci_low.isna() | d.value.isna() | (d.ci_low <= d.value + 1e-9)),
                         name="ci_low <= value"),
                pa.Check(lambda d: (d.ci_high.isna() | d.value.isna() | (d.ci_high >= d.value - 1e-9)),
                         name="ci_high >= value")],
        strict=True, name="metrics"),
    "findings": pa.DataFrameSchema({
        "run_id": _str(), "pack": _str(), "pack_version": _str(), "rule_id": _str(), "title": _str(),
        "status": _str(checks=pa.Check.isin(FINDING_STATUSES)), "severity": _str(),
        "observed": _float(nullable=True), "warn_if": _str(), "fail_if": _str(), "judged": _str(),
        "location": _str(), "refs": _str(), "message": _str(), "evaluated_at": _ts(),
        "pack_hash": _str(checks=pa.Check.str_matches(r"^([0-9a-f]{64})?$")), "probe": _str(), "metric": _str(),
        "judged_by": _str()},
        strict=True, name="findings"),
    "artifacts": pa.DataFrameSchema({
        "run_id": _str(), "probe": _str(), "name": _str(), "mime": _str(), "data": pa.Column(object),
        "meta": _str()}, strict=True, name="artifacts"),
    "embeddings": pa.DataFrameSchema({
        "model_id": _str(), "dataset_id": _str(), "condition": _str(), "seed": _int(), "row_index": _int(),
        "vector": pa.Column(object)}, strict=True, name="embeddings"),
}
