"""Sanity figures for sample_data/README.md, measured with faceaudit's own loaders and probes.

    .venv/bin/python scripts/sanity_figures.py [--db /tmp/sanity.duckdb]

Runs the identity probe (clean and surgical mask) and the leakage probe (sex and skin tone) on each
FR sample model, and the attribute model's heads directly, all on the
default evaluation set (300 people x 8 images, people never seen in training), preset quick,
seed 0. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from audit import api
from audit.config import AuditConfig
from audit.store import Store

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "sample_data" / "models"
FR_MODELS = ("fr-baseline", "fr-maskaware", "fr-private", "fr-robust")


def row(m, **where):
    r = m
    for k, v in where.items():
        r = r[r[k] == v]
    r = r.iloc[0]
    return f"{r['value']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", type=Path, default=Path(tempfile.mkdtemp()) / "sanity.duckdb")
    ap.add_argument("--models", default=",".join(FR_MODELS + ("attr-classifier",)), help="comma-separated subset")
    args = ap.parse_args()
    only = args.models.split(",")
    lines = ["| model | measure | value [95% CI] |", "| --- | --- | --- |"]
    for name in (n for n in FR_MODELS if n in only):
        cfg = AuditConfig(model=MODELS / f"{name}.onnx", probes=["identity", "leakage"],
                          conditions=["clean", "mask:surgical"], attributes=["sex", "skin_tone"])
        run = api.run_audit(cfg, args.db)
        with Store(args.db, read_only=True) as s:
            m = s.metrics(run)
        lines.append(f"| {name} | TAR @ FMR 1e-3, clean | {row(m, metric='tar_at_fmr', condition='clean', setting='fmr=0.001')} |")
        lines.append(f"| {name} | TAR @ FMR 1e-3, surgical mask | "
                     f"{row(m, metric='tar_at_fmr', condition='mask:surgical', setting='fmr=0.001')} |")
        for attr in ("sex", "skin_tone"):
            lines.append(f"| {name} | {attr} leakage (normalised gain), clean | "
                         f"{row(m, metric='normalised_gain', condition='clean', attribute=attr, setting='train=same')} |")
    if "attr-classifier" not in only:
        print("\n".join(lines))
        return
    cfg = AuditConfig(model=MODELS / "attr-classifier.onnx", probes=["leakage"], conditions=["clean"])
    run = api.run_audit(cfg, args.db)
    with Store(args.db, read_only=True) as s:
        m = s.metrics(run)
    for attr, metric in (("sex", "accuracy"), ("skin_tone", "accuracy"), ("age", "mae")):
        lines.append(f"| attr-classifier | {attr} head {metric}, clean | "
                     f"{row(m, metric=metric, condition='clean', attribute=attr, setting='direct')} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
