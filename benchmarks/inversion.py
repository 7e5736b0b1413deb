"""Inversion at a real model's size: the whole inversion probe (preset quick by default) on 300 synthetic
people at 112x112 against a MobileFaceNet-sized target. Prints one JSON object.

    .venv/bin/python benchmarks/inversion.py [--preset quick] [--people 300] [--images 4] [--device cpu|cuda]

The target and the attacker-side model (the decoder's identity loss goes through it) are two
MobileFaceNet-shaped networks built here from torchvision's MobileNetV2 inverted-residual blocks
(expansion 2, a global depthwise 7x7 head, 128-d embedding; about 0.2 GFLOPs per image, counted
with torch's FLOP counter) with untrained, seeded weights, exported to ONNX with a profile like a
vendor's. Untrained weights are fine for timing: the cost of an attack does not depend on what the
weights have learnt, and both inversion attacks run to their preset caps or plateaus as usual.
The issue's goal: quick finishes in 10 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
import yaml
from torchvision.models.mobilenetv2 import InvertedResidual
from torchvision.ops.misc import Conv2dNormActivation

from audit import api
from audit.config import make_config
from audit.metrics.settings import rate_of
from audit.store import Store
from audit.synth import Recipe, materialise

# (expansion, channels, repeats, first stride): MobileFaceNet's bottleneck table (Chen et al., 2018).
STAGES = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


def mobilefacenet(dim: int = 128) -> nn.Sequential:
    layers: list[nn.Module] = [Conv2dNormActivation(3, 64, 3, 2, activation_layer=nn.PReLU, inplace=None),
                               Conv2dNormActivation(64, 64, 3, 1, groups=64, activation_layer=nn.PReLU, inplace=None)]
    cin = 64
    for t, c, n, s in STAGES:
        for i in range(n):
            layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
            cin = c
    layers += [Conv2dNormActivation(cin, 512, 1, activation_layer=nn.PReLU, inplace=None),
               nn.Conv2d(512, 512, 7, groups=512, bias=False), nn.BatchNorm2d(512),   # global depthwise conv
               nn.Flatten(), nn.Linear(512, dim, bias=False), nn.BatchNorm1d(dim)]
    return nn.Sequential(*layers)


def gflops(net: nn.Module) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.zeros(1, 3, 112, 112))
    return counter.get_total_flops() / 2e9  # multiply-adds, the convention FR papers quote


def export(net: nn.Module, path: Path, name: str) -> None:
    torch.onnx.export(net, torch.zeros(2, 3, 112, 112), str(path), input_names=["input"], output_names=["embedding"],
                      dynamic_axes={"input": {0: "batch"}, "embedding": {0: "batch"}}, opset_version=17, dynamo=False)
    profile = {"name": name, "kind": "embedding", "embedding_output": "embedding",
               "input": {"name": "input", "size": [112, 112], "layout": "NCHW", "color": "RGB",
                         "mean": [127.5] * 3, "std": [127.5] * 3}}
    path.with_name(f"{name}.profile.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="quick", choices=["quick", "standard", "thorough"])
    ap.add_argument("--people", type=int, default=300)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        models = {}
        for name, seed in (("mfn-target", 0), ("mfn-attacker", 1)):
            torch.manual_seed(seed)
            net = mobilefacenet().eval()
            models[name] = tmp / f"{name}.onnx"
            export(net, models[name], name)
        size = gflops(net)
        folder, _, _ = materialise(tmp / "data", Recipe(people=args.people, images=args.images), workers=2)
        cfg = make_config(model=models["mfn-target"], data=str(folder), probes=["inversion"], conditions=["clean"],
                          preset=args.preset, seed=0, attacker_model=models["mfn-attacker"], detector="none",
                          device=args.device, accept_profile=True)  # untrained weights: any preprocessing is as good
        db = tmp / "s.duckdb"
        started = time.perf_counter()
        run_id = api.run_audit(cfg, db)
        wall = time.perf_counter() - started
        with Store(db, read_only=True) as s:
            probe_s = float(s.probes(run_id).set_index("probe").loc["inversion", "seconds"])
            arts = s.artifacts(run_id, "inversion").set_index("name")
            m = s.metrics(run_id)
        stats = json.loads(bytes(arts.loc["decoder.json", "data"]))
    sar = m[(m["metric"] == "sar_type1") & (m["condition"] == "clean") & (m["setting"].map(lambda x: rate_of(x, "fmr")) == 1e-3)]
    print(json.dumps({
        "preset": args.preset, "device": args.device, "people": args.people, "images": args.people * args.images,
        "target_gflops_per_image": round(size, 3), "run_seconds": round(wall, 1), "inversion_seconds": round(probe_s, 1),
        "goal_seconds": 600 if args.preset == "quick" else None,
        "decoder": {k: stats.get(k) for k in ("epochs", "images_per_s", "pairs", "held_out_pairs")},
        "decoder_convergence": {k: stats.get("convergence", {}).get(k) for k in ("steps", "cap", "stopped_by")},
        "white_box_convergence": {k: stats.get("white_box_convergence", {}).get(k) for k in ("steps", "cap",
                                                                                            "stopped_by")},
        "sar_type1_at_fmr_1e-3 (untrained weights: not a strength figure)": {";".join(r.setting.split(";")[:2]): round(r.value, 3) for r in sar.itertuples()},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


if __name__ == "__main__":
    main()
