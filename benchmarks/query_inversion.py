"""Inversion by threat model on any dataset and FR model: the decoder alone (stolen template), the decoder plus
score-only queries (template + the matcher's comparison interface) and the white-box refinement (model file),
with the success curve against queries spent. Prints one JSON object.

    .venv/bin/python benchmarks/query_inversion.py --data DIR --model M.onnx [--profile P.yaml]
        [--presets quick,standard] [--victims 48] [--seed 0] [--queries N] [--synthetic-faces N] [--no-white-box]

It runs the inversion probe's own pieces (audit/probes/inversion.py, audit/probes/query.py) with each preset's
decoder budget (epochs, auxiliary images, synthetic faces), query budget and white-box steps, on a seeded subset
of ``--victims`` victim images (the probe attacks 48 at quick and 500 at standard; fewer here keeps standard's
1,000 queries per victim affordable on a CPU). Victims and auxiliary people are disjoint halves of the persons,
thresholds come from the victims' clean impostor scores, as in the probe. Use it on a real model with real photos
(aligned first with ``faceaudit prepare``) to see how far each threat model gets; nothing here ships real faces.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402

from audit.config import PRESETS  # noqa: E402
from audit.data import load  # noqa: E402
from audit.data.split import subject_split  # noqa: E402
from audit.metrics import verification as ver  # noqa: E402
from audit.models import load as load_model  # noqa: E402
from audit.probes.inversion import SETTINGS, InversionProbe, decode, fit_decoder, white_box  # noqa: E402
from audit.probes.query import ScoreOracle, query_attack  # noqa: E402
from audit.seeding import derive_seed  # noqa: E402


def sar(model, images, templates, taus) -> dict:
    own = (ver.l2_normalise(model.infer.embed(images)) * ver.l2_normalise(templates)).sum(1)
    return {f"{t:g}": round(float(np.mean(own >= tau)), 4) for t, tau in taus.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--profile")
    ap.add_argument("--presets", default="quick,standard")
    ap.add_argument("--victims", type=int, default=48)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--queries", type=int, help="query budget per victim instead of the preset's")
    ap.add_argument("--synthetic-faces", type=int,
                    help="synthetic faces for the decoder instead of the preset's (0: the auditor's images only)")
    ap.add_argument("--no-white-box", action="store_true", help="skip the white-box refinement")
    args = ap.parse_args()
    ds = load(args.data)
    faces = ds.faces()
    subjects = ds.manifest["subject"].to_numpy()[faces.rows]
    model = load_model(args.model, args.profile)
    emb = model.infer.embed(faces.images)
    aux_all, victims = subject_split(subjects, 0.5, derive_seed(args.seed, "inversion-split"))
    taus = InversionProbe.calibrate(emb[victims], subjects[victims]).taus
    rng = np.random.default_rng(args.seed)
    pick = np.sort(rng.choice(victims, min(args.victims, len(victims)), replace=False))
    out = {"benchmark": "query_inversion", "model": os.path.basename(args.model), "images": int(len(faces.rows)),
           "persons": int(len(np.unique(subjects))), "victims": int(len(pick)),
           "thresholds": {f"{t:g}": round(float(v), 4) for t, v in taus.items()}, "presets": {}}
    torch_b = model.torch()
    for preset in args.presets.split(","):
        steps, budget = SETTINGS[preset], args.queries or PRESETS[preset]["inversion_queries"]
        aux = aux_all if len(aux_all) <= steps["aux"] else np.sort(rng.choice(aux_all, steps["aux"], replace=False))
        t0 = time.perf_counter()
        n_syn = PRESETS[preset]["synthetic_faces"] if args.synthetic_faces is None else args.synthetic_faces
        dec, stats = fit_decoder(emb[aux], faces.images[aux], subjects[aux], n_syn, steps["epochs"],
                                 derive_seed(args.seed, "decoder"), derive_seed(args.seed, "synthetic"),
                                 model.infer.embed)
        row = {"decoder": {"seconds": round(time.perf_counter() - t0, 1),
                           **{k: stats[k] for k in ("real_pairs", "synthetic_offered", "chosen", "synthetic_pairs",
                                                    "held_out_distance", "epochs")},
                           "stopped_by": stats["convergence"]["stopped_by"]}}
        start = decode(dec, emb[pick])
        row["decoder_alone_sar_type1"] = sar(model, start, emb[pick], taus)
        t0 = time.perf_counter()
        q = query_attack(ScoreOracle(model.infer.embed, emb[pick]), start, budget, derive_seed(args.seed, "query"))
        row["query"] = {"budget": budget, "seconds": round(time.perf_counter() - t0, 1),
                        "curve": {"queries": q.checkpoints,
                                  "sar_type1": {f"{t:g}": [round(float(np.mean(b >= tau)), 4) for b in q.snapshots]
                                                for t, tau in taus.items()}}}
        if torch_b is not None and not args.no_white_box:
            t0 = time.perf_counter()
            wb, rec = white_box(torch_b, start, emb[pick], steps["wb_steps"])
            row["white_box"] = {"sar_type1": sar(model, wb, emb[pick], taus), "steps": rec["steps"],
                                "stopped_by": rec["stopped_by"], "seconds": round(time.perf_counter() - t0, 1)}
        out["presets"][preset] = row
        print(json.dumps(out), flush=True)  # what is measured so far survives an interrupted run


if __name__ == "__main__":
    main()
