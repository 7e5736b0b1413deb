"""Run one small, seeded audit of the sample world and dump its stored metrics, sorted, as JSON.

Run it on two versions of the code and compare the files byte for byte: a refactoring that changes no
number leaves them identical. Each version must be imported from its own checkout, so the script puts
the repository it lives in first on ``sys.path`` (copy it into the other checkout's ``scripts/`` to run
it there) and prints which ``audit`` package it used::

    python scripts/check_same_metrics.py --out after.json
    cp scripts/check_same_metrics.py /tmp/base/scripts/
    (cd /tmp/base && python scripts/check_same_metrics.py --out /tmp/before.json)
    python scripts/check_same_metrics.py --compare /tmp/before.json after.json

The audit: ``fr-baseline`` on a small synthetic set (``--people`` x ``--images``), the quick preset,
probes leakage, identity and cloak, conditions clean and a surgical mask, seed 0, CPU, no parity check;
about half a minute on two CPU cores (set ``OMP_NUM_THREADS=1`` for both runs). The run id and timings are
left out; every metric row and value is kept (floats as ``repr`` writes them, so equal files mean equal bits).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def dump(out: Path, people: int, images: int, probes: list[str]) -> None:
    sys.path.insert(0, str(REPO))
    import audit
    from audit import api
    from audit.config import AuditConfig
    from audit.store import Store

    print(f"audit imported from {Path(audit.__file__).parent}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="same-metrics-") as tmp:
        data, _, _ = api.sample_data(Path(tmp) / "data", people=people, images=images)
        config = AuditConfig(model=REPO / "sample_data" / "models" / "fr-baseline.onnx", data=str(data),
                             probes=probes, conditions=["clean", "mask:surgical"], preset="quick", seed=0,
                             parity=False, device="cpu")
        db = Path(tmp) / "same.duckdb"
        run_id = api.run_audit(config, db)
        with Store(db, read_only=True) as store:
            metrics = store.metrics(run_id).drop(columns=["run_id"])
            dataset_id = store.run(run_id)["dataset_id"]
    keys = [c for c in ("probe", "condition", "metric", "attribute", "group", "setting") if c in metrics.columns]
    metrics = metrics.sort_values(keys, kind="mergesort").reset_index(drop=True)
    rows = [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in metrics.to_dict(orient="records")]
    doc = {"dataset_id": dataset_id, "rows": len(rows), "metrics": rows}
    out.write_text(json.dumps(doc, indent=1, sort_keys=True, allow_nan=True) + "\n", encoding="utf-8")
    print(f"wrote {out}: {len(rows)} metric rows", file=sys.stderr)


def compare(a: Path, b: Path) -> int:
    same = a.read_bytes() == b.read_bytes()
    rows = json.loads(a.read_text(encoding="utf-8"))["rows"]
    print(f"{a} vs {b}: {'byte-identical' if same else 'DIFFERENT'} ({rows} metric rows in the first)")
    return 0 if same else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("same-metrics.json"))
    ap.add_argument("--people", type=int, default=60)
    ap.add_argument("--images", type=int, default=5)
    ap.add_argument("--probes", default="leakage,identity,cloak")
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = ap.parse_args()
    if args.compare:
        return compare(*args.compare)
    dump(args.out, args.people, args.images, args.probes.split(","))
    return 0


if __name__ == "__main__":
    sys.exit(main())
