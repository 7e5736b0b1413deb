"""Attack strength against cost, per preset: every cloak method's PSR@1 and seconds, and the inversion
decoder's SAR and seconds, on one sample FR model. Prints one JSON object.

    python benchmarks/strength.py [--presets quick,standard] [--model fr-baseline] [--seeds 0]
                                  [--attack-precision auto]

Each preset is one ordinary run (probes inversion + cloak, the demo's helper models) into a
temporary store; seconds per cloak attack come from the probe's convergence records, the
inversion figures from its decoder record and the run's probe timings.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from audit import api
from audit.config import make_config
from audit.store import Store


def one(preset: str, model: str, tmp: Path, seed: int = 0, precision: str = "auto") -> dict:
    data, _, _ = api.sample_data(tmp / "sample-data")
    models = {m.stem: m for m in api.sample_models()}
    others = [m for k, m in models.items() if k != model and k.startswith("fr-")]
    cfg = make_config(model=models[model], data=str(data), probes=["inversion", "cloak"], conditions=["clean"],
                      preset=preset, seed=seed, evaluator=others[0], attacker_model=others[1],
                      surrogates=others[:1], attack_precision=precision)
    db = tmp / f"{preset}-{seed}-{precision}.duckdb"
    run_id = api.run_audit(cfg, db)
    with Store(db, read_only=True) as s:
        m = s.metrics(run_id)
        probes = s.probes(run_id).set_index("probe")["seconds"].to_dict()
        arts = s.artifacts(run_id)
    art = {(r.probe, r.name): json.loads(bytes(r.data)) for r in arts.itertuples() if r.name.endswith(".json")}
    psr = m[(m["probe"] == "cloak") & (m["metric"] == "psr_at_1") & ~m["condition"].str.contains("purify")]
    cloaks = []
    for c in art.get(("cloak", "convergence.json"), []):
        if c["eps"] == 0:
            continue
        row = psr[(psr["condition"] == f"cloak:{c['method']}@{c['eps']:g}") & (psr["setting"] == c["setting"])]
        cloaks.append({"setting": c["setting"], "method": c["method"], "eps": c["eps"],
                       "psr_at_1": round(float(row["value"].iloc[0]), 3) if len(row) else None,
                       "steps": c["steps"], "cap": c["cap"], "stopped_by": c["stopped_by"],
                       "seconds": c.get("seconds")})
    sar = m[(m["probe"] == "inversion") & m["metric"].isin(["sar_type1", "sar_type2"]) & (m["condition"] == "clean")]
    dec = art.get(("inversion", "decoder.json"), {})
    return {"preset": preset, "seed": seed, "attack_precision": cfg.precision(),
            "probe_seconds": {k: round(v, 1) for k, v in probes.items()},
            "inversion": {"decoder_epochs": dec.get("epochs"), "decoder_stopped_by": dec.get("convergence", {}).get(
                "stopped_by"), "white_box_steps": dec.get("white_box_convergence", {}).get("steps"),
                "sar": {f"{r.metric};{r.setting}": round(r.value, 3) for r in sar.itertuples()}},
            "cloak": cloaks}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", default="quick,standard")
    ap.add_argument("--model", default="fr-baseline")
    ap.add_argument("--seeds", default="0", help="comma-separated run seeds (victims, splits and attack starts)")
    ap.add_argument("--attack-precision", default="auto", help="auto | float32 | bfloat16, or several, comma-separated")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [one(p, args.model, Path(tmp), int(s), prec) for p in args.presets.split(",")
                for s in args.seeds.split(",") for prec in args.attack_precision.split(",")]
    print(json.dumps({"benchmark": "strength", "model": args.model, "presets": rows}, indent=1))


if __name__ == "__main__":
    main()
