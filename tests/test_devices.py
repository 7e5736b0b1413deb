"""Device and backend selection (issue 34): what ``--device`` picks given what onnxruntime and torch can use,
the attack precision it implies, what a run records, and that a run is never finished on another backend.

Only the availability queries are replaced (``onnxruntime.get_available_providers``, ``torch.cuda.is_available``,
the bfloat16 queries): every choice, session and run below is the real code on this CPU."""

from __future__ import annotations

import threading

import numpy as np
import onnxruntime
import pytest
import torch

import audit
from audit import api
from audit.config import AuditConfig
from audit.devices import CPU_EP, CUDA_EP, NO_CUDA, Compute, describe, resolve_precision, select_compute
from audit.errors import ConfigError, ModelError
from audit.models import load as load_model
from audit.run.inputs import Inputs, content_hashes
from audit.run.results import check_resume, refuse_unchecked_torch
from audit.store import Store
from audit.threads import cores


@pytest.fixture
def machine(monkeypatch):
    """Say which GPU routes this machine has: ``machine(ort_cuda=..., torch_cuda=..., bf16=...)``."""
    def set_(ort_cuda: bool = False, torch_cuda: bool = False, bf16: bool = True, cpu_bf16: bool = False):
        providers = ([CUDA_EP] if ort_cuda else []) + [CPU_EP]
        monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: list(providers))
        monkeypatch.setattr(torch.cuda, "is_available", lambda: torch_cuda)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: cpu_bf16, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    return set_


@pytest.mark.parametrize("ort_cuda,torch_cuda,device,expected", [
    # --device cuda: onnxruntime's CUDA provider where installed, else the torch backend on CUDA
    (True, True, "cuda", Compute("cuda", "ort", CUDA_EP, "cuda")),
    (False, True, "cuda", Compute("cuda", "torch", None, "cuda")),
    (True, False, "cuda", Compute("cuda", "ort", CUDA_EP, "cpu")),  # a CPU-only torch: attacks on the CPU
    # auto: the same where a GPU is usable, else the CPU
    (False, True, "auto", Compute("cuda", "torch", None, "cuda")),
    (True, True, "auto", Compute("cuda", "ort", CUDA_EP, "cuda")),
    (False, False, "auto", Compute("cpu", "ort", CPU_EP, "cpu")),
    # cpu never looks at the GPU
    (True, True, "cpu", Compute("cpu", "ort", CPU_EP, "cpu")),
])
def test_device_picks_what_is_there(machine, ort_cuda, torch_cuda, device, expected):
    machine(ort_cuda=ort_cuda, torch_cuda=torch_cuda)
    assert select_compute(device) == expected


def test_cuda_without_a_gpu_is_one_line(machine):
    machine()
    for call in (lambda: select_compute("cuda"), lambda: AuditConfig(model="m.onnx", device="cuda").precision()):
        with pytest.raises(ModelError) as err:
            call()
        assert str(err.value) == NO_CUDA and "\n" not in NO_CUDA and "faceaudit[gpu]" in NO_CUDA
    with pytest.raises(ModelError, match="--device must be auto, cpu or cuda"):
        select_compute("tpu")


@pytest.mark.parametrize("torch_cuda,bf16,cpu_bf16,device,expected", [
    (True, True, False, "cuda", "bfloat16"),     # a GPU that computes bfloat16 natively (Ampere and later)
    (True, False, False, "cuda", "float32"),     # an older GPU: emulated bfloat16 would be slower
    (False, True, False, "cpu", "float32"),      # a CPU without AVX512-BF16 or AMX
    (False, True, True, "cpu", "bfloat16"),      # a CPU with AVX512-BF16
    (True, True, False, "cpu", "float32"),       # --device cpu on a GPU machine: the CPU's answer
])
def test_auto_precision_is_bfloat16_only_where_native(machine, torch_cuda, bf16, cpu_bf16, device, expected):
    machine(torch_cuda=torch_cuda, bf16=bf16, cpu_bf16=cpu_bf16)
    cfg = AuditConfig(model="m.onnx", device=device)
    assert cfg.precision() == expected == cfg.to_record()["resolved"]["attack_precision"]
    assert AuditConfig(model="m.onnx", device=device, attack_precision="float32").precision() == "float32"


def test_listed_cuda_provider_that_does_not_start_gives_way(machine, tiny_model):
    """onnxruntime-gpu lists its CUDA provider even when CUDA's libraries are missing, and a session then runs on
    the CPU; on this CPU-only onnxruntime the real session falls back the same way."""
    machine(ort_cuda=True, torch_cuda=False)
    assert load_model(tiny_model, device="auto").compute == Compute("cpu", "ort", CPU_EP, "cpu")
    with pytest.raises(ModelError, match="could not start it"):
        load_model(tiny_model, device="cuda").compute
    machine(ort_cuda=True, torch_cuda=True)  # the torch route takes over (its backend is not built here)
    assert load_model(tiny_model, device="cuda").compute == Compute("cuda", "torch", None, "cuda")


def test_the_torch_route_embeds_like_onnxruntime(tiny_model):
    """What ``infer`` runs when the torch route is chosen: the converted graph, agreeing with onnxruntime."""
    model = load_model(tiny_model, device="cpu")
    assert model.infer is model.ort
    model._compute = Compute("cpu", "torch", None, "cpu")  # the torch route's dispatch, on this CPU
    assert model.infer is model.torch()
    images = np.random.default_rng(0).integers(0, 256, (5, 112, 112, 3), dtype=np.uint8)
    a, b = model.ort.embed(images), model.infer.embed(images)
    assert np.allclose(a, b, atol=1e-4)


def test_torch_route_needs_its_parity(tiny_model):
    model = load_model(tiny_model, device="cpu")
    refuse_unchecked_torch(model, {"available": True, "passed": False, "max_abs_diff": 1.0, "min_cosine": 0.5})
    model._compute = Compute("cuda", "torch", None, "cuda")
    with pytest.raises(ModelError, match="does not agree with onnxruntime.*max abs diff 1, min cosine 0.500000"):
        refuse_unchecked_torch(model, {"available": True, "passed": False, "max_abs_diff": 1.0, "min_cosine": 0.5})
    refuse_unchecked_torch(model, {"available": True, "passed": True})


@pytest.mark.slow
def test_run_records_where_it_computed(tiny_model, small_data, tmp_path):
    """A real run stores its backend, provider and precision with the run, and the report says it."""
    from audit.report.render import render_run

    cfg = AuditConfig(model=tiny_model, data=str(small_data), probes=["identity"], conditions=["clean"],
                      device="cpu", attack_precision="float32", bootstrap=30, accept_profile=True)
    db = tmp_path / "s.duckdb"
    run_id = api.run_audit(cfg, db)
    with Store(db, read_only=True) as s:
        env = s.run(run_id)["environment"]
        html, _ = render_run(s, run_id)  # (the page, the tables its print attaches)
    assert env["device"] == "cpu"
    assert env["compute"] == {"device": "cpu", "backend": "ort", "provider": CPU_EP, "torch_device": "cpu",
                              "attack_precision": "float32", "attack_threads": cores()}
    assert ("cpu (embeddings through onnxruntime CPUExecutionProvider; gradient attacks in float32 on cpu; "
            f"{cores()} torch thread") in html


@pytest.fixture
def stored_cuda_run(tiny_model, small_data, tmp_path):
    """An interrupted run as a CUDA machine stores it (torch route, bfloat16 attacks), without running a probe."""
    cfg = AuditConfig(model=tiny_model, data=str(small_data), probes=["leakage"], conditions=["clean"], seed=7,
                      attack_precision="bfloat16")
    model = load_model(tiny_model)
    dataset = api.resolve_dataset(str(small_data))
    record = {**cfg.to_record(), "inputs": content_hashes(Inputs(model, {"evaluator": None, "attacker_model": None,
                                                                          "attribute_model": None}, [], dataset))}
    env = {"faceaudit": audit.__version__, "device": "cuda", "compute": {"device": "cuda", "backend": "torch", "provider": None,
                                         "torch_device": "cuda", "attack_precision": "bfloat16"}}
    db = tmp_path / "s.duckdb"
    with Store(db) as s:
        run_id = s.create_run(model.info.sha256, dataset.dataset_id, record, cfg.seed, env)
        s.set_run_status(run_id, "interrupted")
    return cfg, db, run_id


def test_resume_of_a_cuda_run_on_a_cpu_is_refused(machine, stored_cuda_run):
    machine()  # this machine: no GPU
    cfg, db, run_id = stored_cuda_run
    for device in ("cpu", "auto"):
        with pytest.raises(ConfigError) as err:
            api.run_audit(cfg.model_copy(update={"device": device}), db, resume=run_id)
        msg = str(err.value)
        assert "\n" not in msg and f"--resume {run_id}: refusing" in msg
        assert ("started on cuda (embeddings through torch; gradient attacks on cuda: cloak attacks and inversion "
                "decoder training in bfloat16 autocast, white-box inversion in float32)") in msg
        assert "cpu (embeddings through onnxruntime CPUExecutionProvider" in msg and "--device cuda" in msg
    with Store(db, read_only=True) as s:
        assert s.run(run_id)["status"] == "interrupted" and s.metrics(run_id).empty
    with pytest.raises(ModelError, match="no CUDA device is usable"):  # and asking for cuda says why it cannot
        api.run_audit(cfg.model_copy(update={"device": "cuda"}), db, resume=run_id)


def test_resume_compares_backend_device_precision_and_threads():
    """A review of reproducibility: the inversion decoder trained with 1 and with 2 torch threads gives numbers that
    differ in their last digits, so a run resumes only with the thread count it started with."""
    run = {"run_id": "r1", "status": "interrupted", "config": {}, "model_id": "m", "dataset_id": "d",
           "environment": {"faceaudit": audit.__version__, "device": "cuda",
                           "compute": {"device": "cuda", "backend": "ort", "provider": CUDA_EP, "torch_device": "cuda",
                                       "attack_precision": "bfloat16", "attack_threads": 2}}}
    same = Compute("cuda", "ort", CUDA_EP, "cuda")
    record = {"inputs": {"model": "m", "dataset": "d"}}
    check_resume(run, record, same, "bfloat16", 2)
    for compute, precision, threads in ((Compute("cuda", "torch", None, "cuda"), "bfloat16", 2),  # another backend
                                        (Compute("cuda", "ort", CUDA_EP, "cpu"), "bfloat16", 2),  # attacks elsewhere
                                        (same, "float32", 2),                                    # another precision
                                        (same, "bfloat16", 16)):                                 # other threads
        with pytest.raises(ConfigError, match="refusing, the run started on cuda") as err:
            check_resume(run, {}, compute, precision, threads)
        assert "2 torch threads" in str(err.value) and "(--device cuda --attack-threads 2)" in str(err.value)
    # a run stored before the backend was recorded: its device alone decides
    old = {**run, "environment": {"faceaudit": audit.__version__, "device": "cuda"}}
    with pytest.raises(ConfigError, match=r"started on cuda \(embeddings through onnxruntime\)"):
        check_resume(old, {}, Compute("cpu", "ort", CPU_EP, "cpu"), "float32", 2)
    check_resume({**run, "environment": {"faceaudit": audit.__version__, "device": "cpu"}}, record,
                 Compute("cpu", "ort", CPU_EP, "cpu"), "float32", 2)
    check_resume({**run, "environment": {"faceaudit": audit.__version__}}, record, Compute("cpu", "ort", CPU_EP, "cpu"),
                 "float32", 2)


def test_cancelled_cpu_run_resumes_on_the_cpu(tiny_model, small_data, tmp_path):
    """The check lets a run finish on the backend it started on (the usual resume)."""
    cfg = AuditConfig(model=tiny_model, data=str(small_data), probes=["identity"], conditions=["clean"],
                      device="cpu", bootstrap=30, accept_profile=True)
    cancel = threading.Event()
    cancel.set()
    db = tmp_path / "s.duckdb"
    with pytest.raises(api.Cancelled):
        api.run_audit(cfg, db, cancel=cancel)
    with Store(db) as s:
        run_id = s.resolve_run("latest")
        env = s.run(run_id)["environment"]
    # the thread count the run set for torch is recorded (every core by default), and a resume keeps it
    assert env["compute"]["attack_threads"] == env["threads"]["torch_batched"] == cores()
    with pytest.raises(ConfigError, match=f"--attack-threads {cores()}"):
        api.run_audit(cfg.model_copy(update={"attack_threads": cores() + 1}), db, resume=run_id)
    assert api.run_audit(cfg, db, resume=run_id) == run_id
    assert describe({"device": "cpu", "backend": "ort"}) == "cpu (embeddings through onnxruntime)"


def test_cloaks_compute_where_their_model_does(tiny_model):
    """The cloak probe passes ``backend.embed_tensor``, a bound method: the images must go to the backend's device
    (they stayed on the CPU while the model ran on CUDA, which only a GPU run would have shown)."""
    from audit.conditions.cloaks import Ensemble, embed_device

    class OnGpu:
        device = "cuda"

        def embed_tensor(self, x):
            return x

    assert embed_device(OnGpu().embed_tensor) == "cuda"
    assert embed_device(Ensemble([OnGpu(), OnGpu()]).embed_tensor) == "cuda"
    assert embed_device(load_model(tiny_model, device="cpu").torch().embed_tensor) == "cpu"
    assert embed_device(lambda x: x) == "cpu"


def test_available_memory_counts_a_containers_page_cache_as_available(tmp_path):
    """A review: the memory guard took a container's usage, page cache included, as taken: with 14 GiB of cache in a
    16 GiB container it said 1 GiB was left, and refused runs that fit."""
    from audit.devices import available_memory

    gib = 2**30
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "meminfo").write_text(f"MemTotal: {64 * gib // 1024} kB\nMemAvailable: {60 * gib // 1024} kB\n")
    assert available_memory(str(tmp_path)) == 60 * gib
    cg = tmp_path / "sys" / "fs" / "cgroup"
    cg.mkdir(parents=True)
    (cg / "memory.max").write_text(f"{16 * gib}\n")
    (cg / "memory.current").write_text(f"{15 * gib}\n")
    (cg / "memory.stat").write_text(f"anon {gib}\nfile {14 * gib}\ninactive_file {14 * gib}\n")
    assert available_memory(str(tmp_path)) == 15 * gib
    (cg / "memory.max").write_text("max\n")  # no limit: the machine's figure
    assert available_memory(str(tmp_path)) == 60 * gib
