"""Option types shared by CLI commands (one definition, many commands)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

Db = Annotated[Path, typer.Option("--db", help="DuckDB store file.", envvar="FACEAUDIT_DB")]
DEFAULT_DB = Path("faceaudit.duckdb")
Data = Annotated[str, typer.Option("--data", help="Dataset folder or manifest; 'sample' = embedded synthetic set.")]
Preset = Annotated[str, typer.Option("--preset", help="quick | standard | thorough")]
Seed = Annotated[int, typer.Option("--seed", help="Seed for every random choice of the run.")]
Device = Annotated[str, typer.Option("--device", help="auto | cpu | cuda")]
AttackPrecision = Annotated[str, typer.Option(
    "--attack-precision", help="What gradient attacks compute in: auto (bfloat16 where the device computes it "
    "natively, else float32) | float32 | bfloat16. Metrics are always measured in float32.")]
Packs = Annotated[Optional[str], typer.Option("--pack", help="Comma-separated rule packs (ids or YAML paths); "
                                                            "default: every pack under rules/.")]
Formats = Annotated[str, typer.Option("--format", help="Comma-separated: html,pdf")]
NoFaces = Annotated[bool, typer.Option("--no-faces", help="Leave face images out of the report.")]


def csv_list(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]
Detector = Annotated[str, typer.Option("--detector", help="Where landmarks come from: auto (manifest landmarks, else "
                                                         "the built-in MTCNN detector) | none (manifest landmarks, "
                                                         "else pre-aligned faces) | mtcnn | PATH.onnx (a detector "
                                                         "with PATH.profile.yaml).")]
MinFaceConfidence = Annotated[float, typer.Option("--min-face-confidence", help="Detections below this confidence "
                                                                               "are failures to acquire.")]
