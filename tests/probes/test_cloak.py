"""Cloak known answers: no budget, no protection; white-box OPOM at eps 8 protects; purifiers and projections."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from audit.conditions.cloaks import METHODS, affine_projection, apply_cloak, convex_projection, make_cloaks
from audit.conditions.purify import PURIFIERS, purify
from audit.probes.cloak import SETTINGS, own_rank, protocol
from tests.probes.conftest import pick


@pytest.fixture(scope="module")
def cloak_metrics(tmp_path_factory, probe_data):
    from audit import api
    from audit.config import AuditConfig
    from audit.store import Store
    from tests.conftest import SAMPLE_MODELS

    db = tmp_path_factory.mktemp("cloak") / "s.duckdb"
    cfg = AuditConfig(model=SAMPLE_MODELS / "fr-baseline.onnx", data=str(probe_data), probes=["cloak"],
                      conditions=["clean"], cloak_eps=[0, 8], parity=False, attack_precision="bfloat16",
                      surrogates=[SAMPLE_MODELS / "fr-maskaware.onnx", SAMPLE_MODELS / "fr-private.onnx"])
    run_id = api.run_audit(cfg, db)
    html = api.build_report(run_id, db, db.parent / "r", formats=["html"])[0].read_text()
    with Store(db) as s:
        m = s.metrics(run_id)
        m.attrs["convergence"] = json.loads(bytes(s.artifacts(run_id, "cloak").set_index("name")
                                                 .loc["convergence.json", "data"]))
        m.attrs["html"] = html
        return m


@pytest.mark.slow
def test_zero_budget_gives_no_protection(cloak_metrics):
    for method in ("pgd", "fi-uap", "opom-centre", "opom-affine", "opom-convex"):
        row = pick(cloak_metrics, condition=f"cloak:{method}@0", metric="psr_at_1", setting="white-box")
        assert row["value"] <= 0.05, method
    assert pick(cloak_metrics, condition="clean", metric="psr_at_1", setting="none")["value"] <= 0.05


@pytest.mark.slow
def test_white_box_opom_protects_and_budget_is_respected(cloak_metrics):
    for hull in ("opom-centre", "opom-affine", "opom-convex"):
        assert pick(cloak_metrics, condition=f"cloak:{hull}@8", metric="psr_at_1", setting="white-box")["value"] >= 0.8
        linf = pick(cloak_metrics, condition=f"cloak:{hull}@8", metric="linf", setting="white-box")
        assert linf["ci_high"] <= 8
        psnr = pick(cloak_metrics, condition=f"cloak:{hull}@8", metric="psnr", setting="white-box")
        assert psnr["value"] > 25


@pytest.mark.slow
def test_transfer_and_purifiers_are_measured(cloak_metrics):
    rows = cloak_metrics[(cloak_metrics["metric"] == "psr_at_1")
                         & (cloak_metrics["setting"] == "transfer:fr-maskaware")
                         & ~cloak_metrics["condition"].str.contains("purify")
                         & cloak_metrics["condition"].str.endswith("@8")]
    # every method in every setting, and the best of them chosen on other persons' results
    assert set(rows["condition"]) == {f"cloak:{m}@8" for m in (*METHODS, "best")}
    best = cloak_metrics[(cloak_metrics["metric"] == "psr_at_1") & (cloak_metrics["condition"] == "cloak:best@8")]
    assert set(best["setting"]) == {"white-box", "transfer:fr-maskaware", "transfer:fr-private",
                                    "transfer:ensemble(fr-maskaware+fr-private)", "transfer:any"}
    assert ((best["ci_low"] <= best["value"]) & (best["value"] <= best["ci_high"])).all()
    white = pick(cloak_metrics, condition="cloak:opom-affine@8", metric="psr_at_1", setting="white-box")["value"]
    transfer = rows.set_index("condition").loc["cloak:opom-affine@8", "value"]
    assert transfer <= white
    purified = pick(cloak_metrics, condition="cloak:opom-affine@8+purify:jpeg50", metric="psr_at_1",
                    setting="white-box")
    assert purified["value"] < white  # JPEG washes much of the cloak out
    for p in PURIFIERS:
        assert not cloak_metrics[cloak_metrics["condition"] == f"cloak:opom-affine@8+purify:{p}"].empty
    # Two surrogates: a third transfer row optimises one cloak against both.
    ens = "transfer:ensemble(fr-maskaware+fr-private)"
    assert pick(cloak_metrics, condition="cloak:opom-affine@8", metric="psr_at_1", setting=ens)["value"] >= 0


@pytest.mark.slow
def test_every_cloak_attack_records_how_it_stopped_and_the_report_says_so(cloak_metrics):
    conv = cloak_metrics.attrs["convergence"]
    settings = {"white-box", "transfer:fr-maskaware", "transfer:fr-private", "transfer:ensemble(fr-maskaware+fr-private)"}
    assert {(c["setting"], c["method"]) for c in conv} == {(s, m) for s in settings for m in METHODS}
    quick = SETTINGS["quick"]
    for c in conv:
        if c["eps"] == 0:
            assert c["stopped_by"] == "no budget" and c["steps"] == 0
            continue
        white = c["setting"] == "white-box"
        assert c["cap"] == (quick["steps"] if white else quick["transfer_steps"])
        assert c["stopped_by"] in ("plateau", "cap") and 1 <= c["steps"] <= c["cap"]
        # White-box: plain sign steps; transfer: the OPOM recipe (momentum and input diversity).
        assert (c["momentum"], c["diversity"] > 0) == ((False, False) if white else (True, True))
        assert c["precision"] == "bfloat16"  # the fixture's explicit --attack-precision, recorded per attack
    html = cloak_metrics.attrs["html"]
    assert "Did the cloak attacks converge?" in html and "input diversity 0.5" in html
    assert "plain sign steps; bfloat16 gradients" in html and "momentum, input diversity 0.5; bfloat16 gradients" in html
    # The curves themselves: one panel per setting with a line per method.
    figure = html.split("Each cloak attack's own objective")[0].rsplit("<figure", 1)[1]
    assert "<svg" in figure and all(m in figure for m in METHODS)


def test_protocol_is_subject_disjoint_between_protected_and_distractors():
    subjects = np.repeat(np.array([f"p{i}" for i in range(10)]), 6)
    chosen, sources, queries, gallery, distractors = protocol(subjects, 4, seed=0)
    assert len(chosen) == 4 and sources.shape == (4, 3) and queries.shape == (4, 2) and gallery.shape == (4,)
    assert not set(subjects[distractors]) & set(chosen)
    assert all(len(set(subjects[np.r_[g, s, q]])) == 1 for g, s, q in zip(gallery, sources, queries))
    assert not set(sources.ravel()) & set(queries.ravel())
    # The gallery image is never one a cloak is computed from, nor a query (a review: the universal cloaks were
    # computed from the gallery image they were then matched against, which overstated protection).
    assert not set(gallery) & (set(sources.ravel()) | set(queries.ravel()))
    # One person with three photos among persons with six is not drawn while six-photo persons suffice (it cut every
    # protected person's cloak to one source image), whatever the seed.
    mixed = np.concatenate([np.repeat(np.array([f"p{i}" for i in range(10)]), 6), ["few"] * 3])
    for seed in range(10):
        who, s6, q6, _, _ = protocol(mixed, 4, seed=seed)
        assert "few" not in who and s6.shape == (4, 3) and q6.shape == (4, 2)
    # Three images, the fewest a protected person has: one each.
    _, s3, q3, g3, _ = protocol(np.repeat(np.array([f"p{i}" for i in range(5)]), 3), 4, seed=0)
    assert s3.shape == (4, 1) and q3.shape == (4, 1) and not set(g3) & (set(s3.ravel()) | set(q3.ravel()))


def test_projections():
    rng = np.random.default_rng(0)
    clean = torch.from_numpy(rng.normal(size=(2, 4, 6))).float()
    inside = clean[:, :2].mean(1, keepdim=True)            # a convex combination: projects onto itself
    torch.testing.assert_close(convex_projection(inside, clean), inside, atol=1e-3, rtol=0)
    torch.testing.assert_close(affine_projection(inside, clean), inside, atol=1e-4, rtol=0)
    far = torch.from_numpy(rng.normal(size=(2, 3, 6)) * 5).float()
    a, c = affine_projection(far, clean), convex_projection(far, clean)
    # The convex hull lies inside the affine hull, so its projection is never closer.
    assert ((far - a).norm(dim=-1) <= (far - c).norm(dim=-1) + 1e-4).all()


def test_budget_and_batching_on_a_tiny_model(tiny_model):
    from audit.models import load

    backend = load(tiny_model).torch()
    imgs = np.random.default_rng(0).integers(0, 256, (3, 2, 112, 112, 3), dtype=np.uint8)
    batched = make_cloaks(backend.embed_tensor, imgs, "opom-centre", 4, steps=3, seed=1)
    assert batched.shape == (3, 3, 112, 112) and np.abs(batched).max() <= 4
    one = make_cloaks(backend.embed_tensor, imgs[:1], "opom-centre", 4, steps=3, seed=1)
    np.testing.assert_allclose(batched[0], one[0], atol=1e-5)  # a person's cloak does not depend on the batch
    out = apply_cloak(imgs[0], batched[0][None])
    assert np.abs(out.astype(int) - imgs[0].astype(int)).max() <= 4
    assert purify(out, "bits5").max() % 8 == 0


def test_cloak_stops_when_its_objective_levels_off_and_records_why(tiny_model):
    from audit.models import load

    backend = load(tiny_model).torch()
    imgs = np.random.default_rng(2).integers(0, 256, (2, 2, 112, 112, 3), dtype=np.uint8)
    # eps 1 with step 1: after one step every pixel sits at the budget, so the objective cannot grow much more.
    rec: dict = {}
    make_cloaks(backend.embed_tensor, imgs, "opom-centre", 1, steps=60, seed=0, patience=3, record=rec)
    assert rec["stopped_by"] == "plateau" and rec["steps"] < 60 and len(rec["curve"]) == rec["steps"]
    long: dict = {}
    make_cloaks(backend.embed_tensor, imgs, "opom-centre", 8, steps=4, seed=0, patience=3, record=long)
    assert long["stopped_by"] == "cap" and long["steps"] == 4
    assert long["curve"][-1] > long["curve"][0]  # the (maximised) objective grew while it ran
    none: dict = {}
    eta = make_cloaks(backend.embed_tensor, imgs, "opom-centre", 0, steps=16, seed=0, patience=3, record=none)
    assert none["stopped_by"] == "no budget" and not np.any(eta)


def test_opom_convex_is_judged_on_its_own_objective_after_its_warm_up(sample_model):
    """opom-convex starts on the centre's objective, which is larger than its own (the centre lies in the hull):
    its plateau saw the switch as a fall and stopped it two steps later (patience 2), returning a warm-up iterate, an
    opom-centre cloak of five steps. The plateau and the ranking of iterates now start on its own objective."""
    import torch.nn.functional as F

    from audit.conditions.cloaks import CONVEX_WARMUP
    from audit.models import load

    backend = load(sample_model("fr-baseline")).torch()
    imgs = np.random.default_rng(2).integers(0, 256, (2, 3, 112, 112, 3), dtype=np.uint8)
    rec: dict = {}
    eta = make_cloaks(backend.embed_tensor, imgs, "opom-convex", 8, steps=40, seed=0, patience=2, record=rec)
    curve, warm = rec["curve"], CONVEX_WARMUP
    assert rec["warmup_steps"] == warm and len(curve) == rec["steps"] and rec["cap"] == 40
    assert curve[warm] < curve[warm - 1]  # the switch: its own objective starts lower
    assert rec["steps"] > 3 * warm and max(curve[warm:]) > 2 * curve[warm - 1], curve
    # What it returns is each person's best iterate on its own objective: at least the best step's mean (a mean of
    # maxima is at least the maximum of means), never a warm-up iterate ranked on the centre's objective.
    with torch.no_grad():
        x = torch.from_numpy(imgs).float().permute(0, 1, 4, 2, 3)
        embed = lambda t: F.normalize(backend.embed_tensor(t.reshape(-1, *t.shape[2:])), dim=1).view(2, 3, -1)
        clean, cloaked = embed(x), embed((x + torch.from_numpy(eta)[:, None]).clamp(0, 255))
        own = ((cloaked - convex_projection(cloaked, clean)) ** 2).sum(-1).mean().item()
    # (a warm-up iterate's own objective is at most its centre objective: the centre lies in the hull)
    assert own >= max(curve[warm:]) * (1 - 1e-4) and own > max(curve[:warm]), (own, curve)


@pytest.mark.slow
def test_an_ensemble_cloak_moves_every_surrogate_further_than_a_cloak_made_on_one_of_them(probe_data):
    """One perturbation against two surrogates: on the model it was not made for, a single-surrogate cloak moves the
    features less than the ensemble cloak does (the point of ensemble transfer attacks)."""
    import torch.nn.functional as F

    from audit.conditions.cloaks import Ensemble
    from audit.data import load as load_data
    from audit.models import load
    from tests.conftest import SAMPLE_MODELS

    faces = load_data(probe_data).faces()
    a, b = (load(SAMPLE_MODELS / f"{n}.onnx").torch() for n in ("fr-maskaware", "fr-private"))
    imgs = faces.images[:24].reshape(6, 4, *faces.images.shape[1:])

    def moved(backend, eta):
        clean = torch.from_numpy(imgs.reshape(-1, *imgs.shape[2:])).permute(0, 3, 1, 2).float()
        adv = torch.from_numpy(apply_cloak(imgs, eta[:, None]).reshape(-1, *imgs.shape[2:])).permute(0, 3, 1, 2)
        with torch.no_grad():
            fc, fa = (F.normalize(backend.embed_tensor(t.float()), dim=1) for t in (clean, adv))
        return float(((fc - fa) ** 2).sum(1).mean())

    only_a = make_cloaks(a.embed_tensor, imgs, "opom-centre", 8, steps=10, seed=0)
    both = make_cloaks(Ensemble([a, b]).embed_tensor, imgs, "opom-centre", 8, steps=10, seed=0)
    assert Ensemble([a, b]).embed_tensor(torch.zeros(1, 3, 112, 112)).shape[1] == 2 * a.embed_tensor(
        torch.zeros(1, 3, 112, 112)).shape[1]
    assert moved(b, both) > moved(b, only_a)


@pytest.mark.slow
def test_ensemble_transfer_protects_more_than_either_surrogate_alone(cloak_metrics):
    """One cloak optimised against two surrogates transfers to the target better, over the methods, than a cloak
    made on either surrogate alone (the reason the probe adds the ensemble row)."""
    rows = cloak_metrics[(cloak_metrics["metric"] == "psr_at_1") & cloak_metrics["condition"].isin(
        [f"cloak:{m}@8" for m in METHODS])]
    mean = rows.groupby("setting")["value"].mean()
    ens = mean["transfer:ensemble(fr-maskaware+fr-private)"]
    assert ens > max(mean["transfer:fr-maskaware"], mean["transfer:fr-private"]) + 0.05, mean.to_dict()


@pytest.fixture(scope="module")
def robust_world(probe_data):
    from audit.data import load as load_data
    from audit.models import load
    from tests.conftest import SAMPLE_MODELS

    ds = load_data(probe_data)
    faces = ds.faces()
    subjects = ds.manifest["subject"].to_numpy()[faces.rows]
    model = load(SAMPLE_MODELS / "fr-robust.onnx")
    return faces.images, subjects, model, model.ort.embed(faces.images)


def robust_psr_at_1(robust_world, backend, method, seed, **budget):
    """PSR@1 of white-box cloaks made on ``backend`` for the quick preset's protected people, judged by onnxruntime."""
    images, subjects, model, emb = robust_world
    chosen, sources, queries, gallery, distractors = protocol(subjects, SETTINGS["quick"]["protect"], seed=0)
    g_emb = emb[np.concatenate([gallery, distractors])]
    own_col = np.repeat(np.arange(len(chosen)), queries.shape[1])
    eta = make_cloaks(backend.embed_tensor, images[sources], method, 8, seed=seed, **budget)
    cloaked = apply_cloak(images[queries], eta[:, None]).reshape(-1, *images.shape[1:])
    rank, _ = own_rank(model.ort.embed(cloaked), g_emb, own_col)
    return float(np.mean(rank > 1))


@pytest.mark.slow
def test_converged_white_box_opom_protects_on_the_robust_model_where_16_steps_do_not(robust_world):
    """Known answer on the hardest sample model (adversarially trained): at eps 8 the probe's converged white-box
    OPOM cloaks protect nearly everyone (PSR@1 0.92 on average, 11 of the 12 protected people in every variant and
    start but one) where the classic 16 fixed sign steps leave people recognised (0.72 on average). Until 0.4.0 the
    cloaks were computed from the gallery image too, and they protected everyone (>= 0.95): held out, one person's
    gallery photo is still matched."""
    backend = robust_world[2].torch()

    def psr_at_1(method, seed, **budget):
        return robust_psr_at_1(robust_world, backend, method, seed, **budget)

    assert psr_at_1("opom-centre", 0, steps=0) == 0.0  # no budget, no protection: every clean query is found first
    quick = SETTINGS["quick"]
    fixed, converged = {}, {}
    for method in ("opom-centre", "opom-affine", "opom-convex"):
        for seed in range(4):  # the random start matters for a short attack: judge the average over starts
            fixed[method, seed] = psr_at_1(method, seed, steps=16)
            converged[method, seed] = psr_at_1(method, seed, steps=quick["steps"], patience=quick["patience"])
    assert np.mean(list(converged.values())) >= 0.9 and min(converged.values()) >= 0.8, converged
    assert np.mean(list(fixed.values())) < 0.8, fixed  # 16 steps do not reach it (0.72 when measured)
    assert np.mean(list(converged.values())) - np.mean(list(fixed.values())) >= 0.1, (converged, fixed)
    assert np.mean([v for (m, _), v in fixed.items() if m == "opom-affine"]) < 0.85, fixed


@pytest.mark.slow
def test_converged_white_box_cloaks_in_bfloat16_reach_the_same_known_answer(robust_world):
    """With --attack-precision bfloat16 the converged white-box cloaks on the robust model protect as the float32
    ones do (PSR@1 >= 0.9: 11 of 12 protected people, the float32 figure): bfloat16 gradients keep the sign steps'
    way."""
    from audit.models import load

    from tests.conftest import SAMPLE_MODELS

    half = load(SAMPLE_MODELS / "fr-robust.onnx", precision="bfloat16").torch()
    assert half.precision == "bfloat16"
    quick = SETTINGS["quick"]
    converged = {method: robust_psr_at_1(robust_world, half, method, 0, steps=quick["steps"],
                                         patience=quick["patience"])
                 for method in ("fi-uap", "opom-centre", "opom-affine", "opom-convex")}
    assert min(converged.values()) >= 0.9, converged


def _cloak_rows(true_logit, reps: int, seed: int, persons: int = 12, queries: int = 3):
    """Per simulated dataset: each method's PSR@1 row and the cross-fitted best's (:func:`best_cloak`), five methods
    of equal strength measured on the same protected persons (a person effect every method shares, one per person
    and method; logistic), as the quick preset protects 12 persons with 3 queries each."""
    from audit.metrics.stats import SubjectBootstrap
    from audit.probes.cloak import best_cloak

    rng = np.random.default_rng(seed)
    subjects = np.repeat(np.arange(persons), queries)
    for r in range(reps):
        shared = rng.standard_normal(persons)
        boot = SubjectBootstrap(subjects, 200, 1000 + r, "cloak")
        outcomes = {}
        for m in range(5):
            p = 1 / (1 + np.exp(-(true_logit + shared + rng.standard_normal(persons))))
            outcomes[f"m{m}"] = (rng.random((persons, queries)) < p[:, None]).astype(float).ravel()
        rows = [dict(condition=f"cloak:m{m}@8", **vars(boot.mean(v, rate=True))) for m, v in enumerate(outcomes.values())]
        rows.append(dict(condition="cloak:best@8", **vars(best_cloak(outcomes, subjects, boot, r))))
        yield pd.DataFrame([dict(probe="cloak", metric="psr_at_1", attribute="", group="all", setting="white-box",
                                 direction="lower_is_riskier", **row) for row in rows])


@pytest.mark.slow
def test_the_best_cloak_is_chosen_on_other_persons_and_does_not_pass_on_the_largest_of_five():
    """A review of the probes: CLOAK-WHITEBOX-PROTECTS took the largest of five methods' PSR@1 measured on the same 12
    persons (and its interval ends from other rows): with every method at a true 0.816, below the 0.90 warn limit, it
    passed in 43% of simulated datasets (one method alone: 11%). The rule now judges the best cloak chosen on other
    persons (cross-fitted halves): unbiased for the truth, and it passes about as often as one method does."""
    from audit.rules.engine import evaluate_rule, load_pack

    rule = next(r for r in load_pack("baseline").rules if r.id == "CLOAK-WHITEBOX-PROTECTS")
    assert rule.where["condition"] == "cloak:best@8"
    old = rule.model_copy(update={"where": {**rule.where, "condition": "cloak:*@8"},
                                  "exclude": {"condition": ["purify:*", "cloak:best@*"]}})
    best, largest, passed, passed_old = [], [], 0, 0
    for df in _cloak_rows(2.0, 200, 7):  # a true PSR@1 of 0.816 per method
        methods = df[df["condition"] != "cloak:best@8"]
        best.append(df[df["condition"] == "cloak:best@8"]["value"].item())
        largest.append(methods["value"].max())
        passed += evaluate_rule(rule, df, {"cloak"}).status == "pass"
        passed_old += evaluate_rule(old, df, {"cloak"}).status == "pass"
    assert abs(np.mean(best) - 0.816) < 0.03 and np.mean(largest) > 0.87, (np.mean(best), np.mean(largest))
    assert passed / 200 < 0.2 < 0.3 < passed_old / 200, (passed, passed_old)


def test_a_helper_whose_torch_conversion_fails_parity_is_not_attacked_through(small_data, tmp_path, monkeypatch):
    """The surrogates (transfer cloaks) and the attacker's FR model (the decoder's identity loss) run through their
    own torch conversions: one that disagrees with its model makes a weaker attack than the attacker holding that
    model has. Each helper's parity is checked like the audited model's and one that fails is withdrawn: its rows are
    stored without a number (transfer:any too, when no surrogate is left), the note says why, the report shows it."""
    from audit import api
    from audit.config import AuditConfig
    from audit.models.backends import TorchBackend
    from audit.store import Store
    from tests.builders import make_onnx

    model, helper = make_onnx(tmp_path / "m.onnx", seed=3), make_onnx(tmp_path / "helper.onnx", seed=5)
    call = TorchBackend._call  # the helper's conversion reads the colour channels the other way
    monkeypatch.setattr(TorchBackend, "_call",
                        lambda self, x: call(self, x.flip(1) if self.info.path.name == "helper.onnx" else x))
    cfg = AuditConfig(model=model, data=str(small_data), probes=["cloak"], conditions=["clean"], cloak_eps=[8],
                      bootstrap=50, surrogates=[helper], attacker_model=helper, accept_profile=True)
    run_id = api.run_audit(cfg, tmp_path / "s.duckdb")
    html = api.build_report(run_id, tmp_path / "s.duckdb", tmp_path / "r", formats=["html"])[0].read_text()
    with Store(tmp_path / "s.duckdb", read_only=True) as s:
        run, m, notes = s.run(run_id), s.metrics(run_id), s.probes(run_id)["message"].iloc[0]
    assert run["parity"]["passed"] and set(run["parity"]["passes"]) == {"inference", "differentiable"}
    helpers = run["parity"]["helpers"]
    assert [h["option"] for h in helpers] == ["--attacker-model", "--surrogate"]
    assert all(h["available"] and not h["passed"] and h["model"] == "helper" for h in helpers)
    psr = m[m["metric"] == "psr_at_1"]
    transfer = psr[psr["setting"].isin(["transfer:helper", "transfer:any"])]
    assert len(transfer) and transfer["value"].isna().all()
    assert "cloak:best@8" in set(psr[psr["setting"] == "transfer:any"]["condition"])
    assert not psr[psr["setting"] == "white-box"]["value"].isna().any()
    assert "Surrogate helper skipped: the torch backend disagrees with onnxruntime" in notes, notes
    assert "--surrogate helper:" in html and "DISAGREES, so no attack runs through it" in html


def test_surrogates_name_their_rows_so_two_of_one_name_or_one_named_any_are_refused(tmp_path):
    from audit.config import AuditConfig
    from audit.errors import ConfigError
    from audit.run.inputs import load_inputs
    from tests.builders import make_onnx
    from tests.conftest import SAMPLE_MODELS

    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    a = make_onnx(tmp_path / "a" / "twin.onnx", seed=1)
    b = make_onnx(tmp_path / "b" / "twin.onnx", seed=2)
    anyone = make_onnx(tmp_path / "any.onnx", seed=3)
    model = SAMPLE_MODELS / "fr-baseline.onnx"
    with pytest.raises(ConfigError, match=r"--surrogate .*b/twin.onnx: its profile name 'twin' is that of --surrogate "
                                          r".*a/twin.onnx"):
        load_inputs(AuditConfig(model=model, data="synth", surrogates=[a, b]))
    with pytest.raises(ConfigError, match=r"--surrogate .*any.onnx: its profile name 'any' is the name of the rows"):
        load_inputs(AuditConfig(model=model, data="synth", surrogates=[anyone]))
    odd = make_onnx(tmp_path / "a;b.onnx", seed=4)
    with pytest.raises(ConfigError, match=r"its profile name 'a;b' is not a row name \(it holds ;"):
        load_inputs(AuditConfig(model=model, data="synth", surrogates=[odd]))
