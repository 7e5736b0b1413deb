"""Inversion decoder: training throughput and time to reach a black-box success attack rate.

    .venv/bin/python benchmarks/inversion.py [--device cpu|cuda] [--target-sar 0.1]

Trains the black-box decoder on fr-baseline embeddings of 600 auxiliary images (300 synthetic
people x 4 images, subject-disjoint halves), in stages of 5 epochs, and after each stage measures
type-I SAR at FMR 1e-3 on the victims. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from audit.data import load
from audit.data.split import subject_split
from audit.metrics import verification as ver
from audit.models import load as load_model
from audit.probes.inversion import Decoder, InversionProbe, decode
from audit.synth import Recipe, materialise

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--target-sar", type=float, default=0.1)
    ap.add_argument("--max-epochs", type=int, default=40)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder, _, _ = materialise(Path(tmp) / "d", Recipe(people=300, images=4))
        faces = load(folder).faces()
    subjects = np.array([f"p{r // 4}" for r in faces.rows])
    model = load_model(ROOT / "sample_data" / "models" / "fr-baseline.onnx")
    emb = model.ort.embed(faces.images)
    aux, victims = subject_split(subjects, 0.5, 0)
    aux = aux[:600]
    tau = InversionProbe._thresholds(emb[victims], subjects[victims])[1e-3]
    torch.manual_seed(0)
    dec = Decoder(emb.shape[1]).to(args.device, memory_format=torch.channels_last)  # as the probe trains it
    opt = torch.optim.Adam(dec.parameters(), lr=2e-3)
    z = torch.from_numpy(ver.l2_normalise(emb[aux]).astype(np.float32)).to(args.device)
    x = torch.from_numpy(faces.images[aux]).permute(0, 3, 1, 2).float().to(args.device)
    curve, seen, train_s, reached = [], 0, 0.0, None
    for epoch in range(1, args.max_epochs + 1):
        t = time.perf_counter()
        dec.train()
        order = torch.randperm(len(z), generator=torch.Generator().manual_seed(epoch)).to(args.device)
        for s in range(0, len(z), 64):
            idx = order[s:s + 64]
            loss = torch.nn.functional.l1_loss(dec(z[idx]), x[idx]) / 127.5
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(idx)
        if args.device == "cuda":
            torch.cuda.synchronize()
        train_s += time.perf_counter() - t
        if epoch % 5 == 0:
            dec.eval()
            r = model.ort.embed(decode(dec, emb[victims], args.device))
            sar = float(np.mean((ver.l2_normalise(r) * ver.l2_normalise(emb[victims])).sum(1) >= tau))
            curve.append({"epoch": epoch, "train_seconds": round(train_s, 2), "sar_type1": round(sar, 3)})
            if reached is None and sar >= args.target_sar:
                reached = round(train_s, 2)
    print(json.dumps({"device": args.device, "aux_images": len(aux), "decoder_images_per_s": round(seen / train_s, 1),
                      "target_sar": args.target_sar, "seconds_to_target": reached, "curve": curve}))


if __name__ == "__main__":
    main()
