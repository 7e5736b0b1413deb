"""Fixes from the review of 'faceaudit compare' (/tmp/review_compare/FINDINGS.md), each on small real outcomes in an
in-memory store: rankings say which end is risky, and more."""

import numpy as np
import pytest

from audit.compare.paired import compare_runs
from audit.probes.base import ProbeResult, outcomes_artifact
from audit.report.render import compare_appendix, environment
from audit.run.results import write_result
from audit.store import Store


def _share(values, subjects, metric="fnmr", condition="clean", setting="fmr=0.01", groups=None, gallery=None):
    return outcomes_artifact("identity", np.arange(len(subjects)), np.asarray(subjects),
                             [{"metric": metric, "condition": condition, "setting": setting, "attribute": "",
                               "kind": "share", "values": np.asarray(values)}], groups, gallery)


def _compare(store, runs: dict, directions=None, **kw):
    for label, arts in runs.items():
        write_result(store, label, ProbeResult(artifacts=arts))
    return compare_runs(store, list(runs), list(runs), directions or {}, **kw)


def _render(paired, **extra):
    ctx = dict(runs=[], labels=list(paired.get("labels", ["A", "B"])), comparability=[], model_verdicts=[],
               summary=[], rows=[], plots=[], forests=[], reference="A", beside=None, findings=[], paired=paired)
    return environment().get_template("compare.html.j2").render(**{**ctx, **extra})


@pytest.mark.parametrize("direction,words", [
    ("lower_is_riskier", "Lower is riskier: rank 1 is the safest model"),
    ("higher_is_riskier", "Higher is riskier: rank 1 is the riskiest model"),
    ("neutral", "No risk direction: rank 1 is the highest value")])
def test_rankings_say_which_end_is_risky_for_every_direction(direction, words):
    """Clean FNMR is lower-is-riskier: the model that misses most (rank 1) is the safest. The rankings said rank 1
    was 'the riskiest model' for every error measure and their CSVs carried no direction."""
    subjects = np.repeat(np.arange(30), 3).astype(str)
    rng = np.random.default_rng(1)
    runs = {lab: [_share((rng.random(len(subjects)) < p).astype(int), subjects)]
            for lab, p in (("A", 0.05), ("B", 0.3), ("C", 0.6))}
    key = ("identity", "fnmr", "clean", "fmr=0.01", "", "all")
    with Store(":memory:") as s:
        res = _compare(s, runs, {key: direction}, n_boot=100)
    (rank,) = res["rankings"]
    assert rank["models"][0]["model"] == "C"
    html = _render(res)
    assert words in html and "for error and leakage measures, the riskiest model" not in html
    tables = compare_appendix({"paired": res})
    for name in ("rankings.csv", "rankings-pairwise.csv"):
        assert set(tables[name]["direction"]) == {direction}, name


@pytest.fixture(scope="module")
def profile_runs(tmp_path_factory):
    """fr-baseline audited twice on 20 synthetic people x 3 images (identity, clean): once under its own profile,
    once as the same file under a wrong one (std 1 instead of 127.5), which its preprocessing check refuses and
    --accept-profile overrides."""
    import shutil

    from audit import api
    from audit.config import AuditConfig
    from audit.synth import Recipe
    from audit.synth.dataset import materialise
    from tests.conftest import SAMPLE_MODELS

    root = tmp_path_factory.mktemp("profiles")
    data, _, _ = materialise(root / "data", Recipe(people=20, images=3), workers=1)
    bad = root / "bad" / "fr-baseline.onnx"
    bad.parent.mkdir()
    shutil.copy(SAMPLE_MODELS / "fr-baseline.onnx", bad)
    profile = (SAMPLE_MODELS / "fr-baseline.profile.yaml").read_text()
    wrong = profile.replace("std:\n  - 127.5\n  - 127.5\n  - 127.5", "std:\n  - 1.0\n  - 1.0\n  - 1.0", 1)
    assert wrong != profile
    bad.with_suffix(".profile.yaml").write_text(wrong)
    db = root / "s.duckdb"
    ids = [api.run_audit(AuditConfig(model=m, data=str(data), probes=["identity"], conditions=["clean"],
                                     bootstrap=50, parity=False, accept_profile=m == bad), db)
           for m in (SAMPLE_MODELS / "fr-baseline.onnx", bad)]
    return db, ids


def test_an_overridden_preprocessing_check_and_another_profile_are_said_on_page_one(profile_runs):
    """The same model file under a wrong profile, accepted with --accept-profile, was compared as 'only the models
    differ' with no word of the profile or of the failed check (and counted 'safer' for it)."""
    from audit.report.render import compare_context

    db, ids = profile_runs
    with Store(db, read_only=True) as s:
        ctx = compare_context(s, ids)
    assert [c["state"] for c in ctx["checks"]] == ["passed", "overridden"]
    assert ctx["overridden"] == [ctx["labels"][1]]
    (diff,) = ctx["profiles_differing"]
    assert diff["runs"] == ctx["labels"] and diff["sha256"] == ctx["runs"][0]["model_id"]
    html = environment().get_template("compare.html.j2").render(**ctx, beside=None)
    verdict = html[html.index('id="verdict"'):html.index('id="runs"')]
    assert "; only the models differ" not in verdict and "not only the models differ" in verdict
    assert "audited under different profiles" in verdict
    assert f"{ctx['labels'][1]} is no fair measure of its model" in verdict and "--accept-profile" in verdict
    runs = html[html.index('id="runs"'):]
    assert "<th>preprocessing check</th>" in runs and "passed (" in runs


def test_fnmr_chooses_its_threshold_again_on_every_replicate(profile_runs):
    """FNMR was compared at each run's whole-sample threshold held fixed (coverage 0.89-0.91); it now keeps the
    clean impostor scores and chooses the threshold again on every replicate, as TAR does: on clean faces FNMR is
    one minus TAR at the same FMR on every replicate, and a group's FNMR uses the whole run's threshold."""
    from audit.compare.paired import PairedBootstrap, load_series

    db, ids = profile_runs
    with Store(db, read_only=True) as s:  # the run under the wrong profile: it misses some genuine comparisons
        series = {x.key: x for x in load_series(s, ids[1])}
        metrics = s.metrics(ids[1])
    (setting,) = {k[3] for k in series if k[1] == "fnmr"}
    fnmr, tar = series["identity", "fnmr", "clean", setting, "", "all"], series["identity", "tar_at_fmr", "clean",
                                                                                 setting, "", "all"]
    assert fnmr.kind == "share_at_rate" and fnmr.complement
    boot = PairedBootstrap(np.concatenate([fnmr.subjects, fnmr.gallery]), 200, 0)
    (f, fb), (t, tb) = boot.stat(fnmr), boot.stat(tar)
    assert f == pytest.approx(1 - t) and np.allclose(fb, 1 - tb, equal_nan=True)
    assert len(set(np.round(fb, 9))) > 3
    stored = metrics.query("metric == 'fnmr' and condition == 'clean'")["value"].iloc[0]
    assert f == pytest.approx(stored, abs=1e-9)
    groups = [x for k, x in series.items() if k[1] == "group_fnmr" and k[2] == "clean" and k[3] == setting]
    assert groups and all(g.kind == "share_at_rate" and len(g.impostor_subjects) == len(fnmr.subjects)
                          for g in groups)
    for g in groups:
        want = metrics.query(f"metric == 'group_fnmr' and condition == 'clean' and attribute == '{g.attribute}' "
                             f"and group == '{g.group}'")["value"]
        if len(want):
            assert boot.stat(g)[0] == pytest.approx(want.iloc[0], abs=1e-9)


def test_a_run_stored_before_fnmr_kept_impostor_scores_compares_at_fixed_thresholds(profile_runs):
    """A run whose FNMR outcomes are each unit's miss at its whole-sample threshold (as stored before) against one
    that keeps the impostor scores: FNMR, group FNMR and their max/min hold both runs' thresholds fixed, exactly as
    comparing two such old runs does, never one held and one chosen again."""
    import json

    from audit.probes.base import OUTCOMES, Artifact

    db, ids = profile_runs
    with Store(db, read_only=True) as s:
        docs = [json.loads(bytes(a["data"])) for i in ids for _, a in s.artifacts(i).iterrows()
                if a["name"] == OUTCOMES]

    def old(doc):  # FNMR as runs stored it before: the miss at the threshold of the kept impostor scores
        from audit.compare.paired import PairedBootstrap, Series

        out = json.loads(json.dumps(doc))
        for sd in out["series"]:
            if sd["metric"] == "fnmr":
                s = Series("identity", "fnmr", "", "", "", "all", np.asarray(doc["rows"]),
                           np.asarray(doc["subjects"], dtype=object), "share_at_rate",
                           values=np.asarray(sd["positives"]), gallery=np.asarray(doc["gallery"]["subjects"]),
                           negatives=np.asarray(sd["negatives"]), negative_pairs=np.asarray(sd["negative_pairs"]),
                           rate=sd["rate"], complement=True)
                fixed = PairedBootstrap(s.subjects, 1, 0).at_fixed_threshold(s)
                for k in ("positives", "negatives", "negative_pairs", "rate", "complement"):
                    del sd[k]
                sd |= {"kind": "share", "values": fixed.values.astype(int).tolist()}
        return out

    def rows(pair):
        with Store(":memory:") as s:
            for label, doc in zip(("A", "B"), pair):
                write_result(s, label, ProbeResult(artifacts=[Artifact.json("identity", OUTCOMES, doc)]))
            got = compare_runs(s, ["A", "B"], ["A", "B"], {}, n_boot=100)["rows"]
        return {(r["metric"], r["condition"], r["attribute"], r["group"]): r for r in got
                if "fnmr" in r["metric"]}

    mixed, both_old = rows([old(docs[0]), docs[1]]), rows([old(docs[0]), old(docs[1])])
    assert mixed.keys() == both_old.keys() and any(k[0] == "fnmr_max_min" for k in mixed)
    for k in mixed:
        for f in ("value_a", "value_b", "ci_low", "ci_high", "verdict"):
            assert mixed[k][f] == both_old[k][f] or (mixed[k][f] != mixed[k][f] and both_old[k][f] != both_old[k][f]), \
                (k, f)


def test_groups_of_few_persons_get_no_verdict_and_no_zero_width_interval():
    """A one-person group was 'told apart' with the interval (0.333 to 0.333), and a 13-person group where every
    person fails in B and none in A with (1.0 to 1.0): a group below MIN_GROUP_PERSONS (and a max/min over it) gets
    'too few persons', in the rankings too; a zero-width interval gets the exact-binomial floor."""
    from audit.compare.paired import MIN_GROUP_PERSONS

    assert MIN_GROUP_PERSONS == 10
    n = 14
    subjects = np.repeat(np.arange(n), 2).astype(str)
    age = np.array(["13-19"] * 2 + ["20-29"] * 26, dtype=object)
    gallery = {"rows": np.arange(100, 100 + n), "subjects": np.arange(n).astype(str),
               "groups": {"age": np.array(["13-19"] + ["20-29"] * 13, dtype=object)}}
    zero, one = np.zeros(len(subjects), int), np.ones(len(subjects), int)
    half = zero.copy()
    half[2::2] = 1  # C: one of each person's two images missed (20-29 only)
    with Store(":memory:") as s:
        res = _compare(s, {lab: [_share(v, subjects, groups={"age": age}, gallery=gallery)]
                           for lab, v in (("A", zero), ("B", one), ("C", half))}, n_boot=200)
    rows = {(r["metric"], r["group"], r["b"]): r for r in res["rows"]}
    small = rows["group_fnmr", "13-19", "B"]
    assert small["verdict"].startswith("too few persons to tell apart (the group has 1;")
    assert small["outcome"] == "cannot be told apart" and small["persons_needed"] is None
    assert rows["fnmr_max_min", "all", "B"]["verdict"].startswith("too few persons") or \
        rows["fnmr_max_min", "all", "B"]["outcome"] == "no finite difference"
    big = rows["group_fnmr", "20-29", "B"]
    assert big["diff"] == 1 and big["ci_low"] < 0.8 and big["ci_high"] >= 1 and big["outcome"] == "B higher"
    assert rows["fnmr", "all", "B"]["outcome"] == "B higher"
    ranking = next(k for k in res["rankings"] if k["metric"] == "group_fnmr" and k["group"] == "13-19")
    assert {p["verdict"] for p in ranking["pairs"]} == {"too few persons to tell apart"}


def test_page_says_what_too_few_persons_means():
    row = {"probe": "identity", "metric": "group_fnmr", "condition": "clean", "setting": "fmr=0.01",
           "attribute": "age", "group": "13-19", "a": "A", "b": "B", "value_a": 0.0, "value_b": 0.3, "diff": 0.3,
           "ci_low": 0.3, "ci_high": 0.3, "ratio": None, "outcome": "cannot be told apart",
           "verdict": "too few persons to tell apart (the group has 1; a verdict needs 10)", "persons_needed": None}
    html = _render({"n_boot": 10, "persons": 5, "rows": [row], "rankings": []})
    assert '"Too few persons": a group\'s rate on fewer persons than a verdict needs' in html.replace("&#34;", '"') \
        .replace("&#39;", "'")


def test_unsupported_operating_points_are_counted_apart():
    """Every identity measure of a 40-person run is at 'fmr=0.01;unsupported': they were counted in the riskier /
    safer tallies with no word; now apart, with how many of them were told apart."""
    from audit.compare import model_verdicts, summarise

    subjects = np.repeat(np.arange(30), 3).astype(str)
    zero, many = np.zeros(len(subjects), int), (np.arange(len(subjects)) % 2 == 0).astype(int)
    with Store(":memory:") as s:
        res = _compare(s, {"A": [_share(zero, subjects, setting="fmr=0.01;unsupported"),
                                 _share(zero, subjects, metric="rank1_miss", setting="")],
                           "B": [_share(many, subjects, setting="fmr=0.01;unsupported"),
                                 _share(many, subjects, metric="rank1_miss", setting="")]},
                       {("identity", "fnmr", "clean", "fmr=0.01;unsupported", "", "all"): "higher_is_riskier",
                        ("identity", "rank1_miss", "clean", "", "", "all"): "higher_is_riskier"}, n_boot=100)
    assert {r["outcome"] for r in res["rows"]} == {"B higher"}
    (m,) = model_verdicts(summarise(res["rows"]))
    assert m["measures"] == 1 and m["risk"]["riskier"] == 1 and m["unsupported"] == 1 and m["unsupported_apart"] == 1
    html = _render(res, model_verdicts=[m])
    assert "Not counted above: 1 measure at operating points the data cannot back" in html


def test_an_unfinished_run_says_so_on_page_one(profile_runs, tmp_path):
    """A run killed before it finished (here: marked interrupted, its inversion asked for and never run) was
    compared paired with no word of its status."""
    import json
    import shutil

    from audit.report.render import compare_context

    db, ids = profile_runs
    shutil.copy(db, tmp_path / "s.duckdb")
    with Store(tmp_path / "s.duckdb") as s:
        s.set_run_status(ids[1], "interrupted")
        config = {**s.run(ids[1])["config"], "probes": ["identity", "inversion"]}
        s._rows("UPDATE runs SET config = ? WHERE run_id = ?", [json.dumps(config), ids[1]])
    with Store(tmp_path / "s.duckdb", read_only=True) as s:
        ctx = compare_context(s, ids)
    assert ctx["progress"] == [{"status": "completed", "unfinished": []},
                               {"status": "interrupted", "unfinished": ["inversion"]}]
    html = environment().get_template("compare.html.j2").render(**ctx, beside=None)
    verdict = html[html.index('id="verdict"'):html.index('id="runs"')]
    assert f"{ctx['labels'][1]} is interrupted</strong>: inversion was asked for but never finished" in verdict
    assert "not finished: inversion" in html[html.index('id="runs"'):]


def test_a_model_without_a_finite_value_is_left_out_of_its_ranking():
    """C not measured (NaN on everyone and on every replicate) ranked last, 'safest' on a higher-is-riskier
    measure, and, being NaN in every replicate, turned A vs B (clearly apart) into 'cannot be told apart'."""
    from audit.compare.paired import _ranking

    rng = np.random.default_rng(0)
    a, b = (0.40, rng.normal(0.40, 0.03, 500)), (0.20, rng.normal(0.20, 0.03, 500))
    res = _ranking([a, b, (float("nan"), np.full(500, np.nan))], ["A", "B", "C"], persons=60)
    assert [(m["model"], m["rank"], m["rank_low"], m["rank_high"]) for m in res["models"]] == [
        ("A", 1, 1, 1), ("B", 2, 2, 2)]
    assert [m["model"] for m in res["not_measured"]] == ["C"] and res["not_measured"][0]["reason"] == "not measured"
    (pair,) = res["pairs"]
    assert pair["verdict"] == "A higher" and pair["p_holm"] < 0.05
    # C undefined on half the replicates: A vs B still uses all of theirs
    partial = (0.30, np.where(rng.random(500) < 0.5, np.nan, rng.normal(0.30, 0.03, 500)))
    res = _ranking([a, b, partial], ["A", "B", "C"], persons=60)
    ab = next(p for p in res["pairs"] if (p["a"], p["b"]) == ("A", "B"))
    assert ab["p_holm"] == pytest.approx(min(1.0, 3 * 2 / 501))
    ranking = {"probe": "identity", "metric": "fnmr", "condition": "clean", "setting": "", "attribute": "",
               "group": "all", "direction": "neutral", **_ranking([a, b, (float("nan"), np.full(500, np.nan))],
                                                                   ["A", "B", "C"], persons=60)}
    table = compare_appendix({"paired": {"rows": [], "rankings": [ranking]}})["rankings.csv"]
    assert table.set_index("model").loc["C", "not_ranked"] == "not measured"
    assert "not ranked: not measured" in _render({"n_boot": 500, "persons": 60, "rows": [], "rankings": [ranking]})


def test_settings_that_differ_read_as_sentences_and_the_counts_say_they_are_unadjusted():
    """'identity no: seed differ' and 'conditions differs' (review F14); page one did not say that its counts are
    per-measure 95% intervals, not adjusted, nor how many false 'told apart' to expect (F5)."""
    html = _render({"n_boot": 10, "persons": 5, "rows": [], "rankings": []},
                   differences=[{"field": "conditions", "values": ["a", "b"]}],
                   comparability=[{"probe": "identity", "blocking": ["seed"]},
                                  {"probe": "leakage", "blocking": ["seed", "folds"]}, {"probe": "cloak", "blocking": []}],
                   model_verdicts=[{"a": "A", "b": "B", "measures": 60, "merged": 0, "unsupported": 0,
                                    "counts": {"B higher": 1, "A higher": 0, "cannot be told apart": 59,
                                               "no finite difference": 0},
                                    "risk": {"riskier": 1, "safer": 0, "no direction": 0},
                                    "probes": [{"probe": "identity", "measures": 60,
                                                "counts": {"B higher": 1, "A higher": 0}}]}])
    assert "no: the setting seed differs" in html and "no: the settings seed, folds differ" in html
    assert "identity (the setting seed differs)" in html and "the setting conditions differs." in html
    assert " seed differ<" not in html and "conditions differs" not in html.replace("setting conditions differs", "")
    assert "not adjusted for the number of measures" in html and "about 3.0 of B's 60" in html


def test_rankings_use_the_paired_rows_interval_and_rank_an_infinite_disparity():
    """A review of the diff: the exact-binomial floor of a group's zero-width interval was the paired rows' only, so a
    ranking said 'B higher' where the paired row said 'cannot be told apart'; an infinite max/min (one group without
    errors beside one with errors, the largest disparity) was left out of its ranking, and the next model was called
    the riskiest; a leakage ranking's p-value did not carry the attacker-fit variance its interval did."""
    from audit.compare.paired import Series, _pair_interval, _ranking

    persons = 12
    group = Series("identity", "group_fnmr", "clean", "", "sex", "g1", np.arange(persons), np.arange(persons).astype(str),
                   "share")
    pair = _pair_interval(group, persons, None)
    a, b = (0.0, np.zeros(200)), (0.1, np.full(200, 0.1))  # every replicate alike: a zero-width paired interval
    d, lo, hi = pair(a, b)
    assert lo < 0 < hi  # the exact-binomial floor
    res = _ranking([a, b, (0.2, np.full(200, 0.2))], ["A", "B", "C"], persons, None, pair)
    ab = next(p for p in res["pairs"] if (p["a"], p["b"]) == ("A", "B"))
    assert ab["verdict"] == "cannot be told apart"  # as the paired row says
    rng = np.random.default_rng(1)
    res = _ranking([(1.5, rng.normal(1.5, 0.1, 300)), (1.2, rng.normal(1.2, 0.1, 300)),
                    (float("inf"), np.full(300, np.inf))], ["A", "B", "C"], 60)
    assert [(m["model"], m["rank"]) for m in res["models"]][0] == ("C", 1) and not res["not_measured"]
    gain = Series("leakage", "normalised_gain", "clean", "train=same", "sex", "all", np.arange(150),
                  np.arange(150).astype(str), "gain", folds=5)
    shared = rng.normal(0, 0.03, 300)
    x, y = (0.30, 0.30 + shared + rng.normal(0, 0.005, 300)), (0.32, 0.32 + shared + rng.normal(0, 0.005, 300))
    z = (0.10, 0.10 + shared)
    plain = _ranking([x, y, z], ["X", "Y", "Z"], 150)
    fitted = _ranking([x, y, z], ["X", "Y", "Z"], 150, None, _pair_interval(gain, 150, None), 5)
    p_of = lambda r: next(p for p in r["pairs"] if (p["a"], p["b"]) == ("X", "Y"))  # noqa: E731
    assert p_of(plain)["p_holm"] < 0.05 <= p_of(fitted)["p_holm"] and p_of(fitted)["verdict"] == "cannot be told apart"


def test_a_run_stored_without_its_profile_hash_is_not_called_differently_profiled():
    """A run stored before the profile hash was kept, beside a new run of the same model file, read 'audited under
    different profiles' (its missing hash counted as one)."""
    from audit.compare.comparability import profiles_differing

    new = {"model_id": "m", "model_name": "fr", "config": {"inputs": {"profile": "p1"}}}
    old = {"model_id": "m", "model_name": "fr", "config": {"inputs": {}}}
    other = {"model_id": "m", "model_name": "fr", "config": {"inputs": {"profile": "p2"}}}
    assert profiles_differing([new, old], ["A", "B"]) == []
    assert [d["runs"] for d in profiles_differing([new, old, other], ["A", "B", "C"])] == [["A", "C"]]


def test_leakage_rank_intervals_carry_the_attackers_fit_variance():
    """Still weak after the fourth session: a leakage ranking's pairwise p-values carried the attacker-fit variance,
    its rank intervals did not, so two models whose gains cannot be told apart were each given one rank, [1, 1] and
    [2, 2], as if the order were sure. Each model's replicates now get noise of its own fit variance before ranking."""
    from audit.compare.paired import Series, _pair_interval, _ranking

    rng = np.random.default_rng(3)
    shared = rng.normal(0, 0.03, 400)  # the persons' variation, shared by the models (paired)
    x = (0.30, 0.30 + shared + rng.normal(0, 0.003, 400))
    y = (0.32, 0.32 + shared + rng.normal(0, 0.003, 400))
    z = (0.05, 0.05 + shared + rng.normal(0, 0.003, 400))
    gain = Series("leakage", "normalised_gain", "clean", "train=same", "sex", "all", np.arange(150),
                  np.arange(150).astype(str), "gain", folds=5)
    plain = {m["model"]: (m["rank_low"], m["rank_high"]) for m in _ranking([x, y, z], ["X", "Y", "Z"], 150)["models"]}
    res = _ranking([x, y, z], ["X", "Y", "Z"], 150, None, _pair_interval(gain, 150, None), 5, seed=7)
    fitted = {m["model"]: (m["rank_low"], m["rank_high"]) for m in res["models"]}
    assert plain == {"Y": (1, 1), "X": (2, 2), "Z": (3, 3)}
    assert fitted["Y"] == (1, 2) and fitted["X"] == (1, 2)  # the order of X and Y is not sure
    assert fitted["Z"] == (3, 3)  # far below both: still last in every replicate
    assert res == _ranking([x, y, z], ["X", "Y", "Z"], 150, None, _pair_interval(gain, 150, None), 5, seed=7)
    xy = next(p for p in res["pairs"] if (p["a"], p["b"]) == ("X", "Y"))
    assert xy["verdict"] == "cannot be told apart"


def test_the_side_by_side_findings_say_could_be_where_a_runs_data_cannot_exclude_a_verdict(profile_runs, tmp_path):
    """A review of the report: the comparison showed a rule whose data could not exclude a warning as plain "not
    applicable" (beside another model's "warn", so that model alone looked bad), and dropped a rule undecided for every
    run into "judged for none of these runs". Each cell now says what its run's data cannot exclude, as the run's own
    report does, and such a rule is listed."""
    import json
    import shutil

    from audit.evidence.gate import undecided
    from audit.report.render import compare_context
    from audit.rules.apply import evaluate_rules

    db, ids = profile_runs
    db = shutil.copy(db, tmp_path / "s.duckdb")
    for r in ids:
        evaluate_rules(r, db)  # every shipped pack
    with Store(db) as s:  # as a run whose disparity interval is too wide to judge, one way for each run
        for r, level in zip(ids, ("warn", "fail")):
            s._rows("UPDATE findings SET status = 'not_applicable', location = ? WHERE run_id = ? AND "
                    "rule_id = 'DEMO-FMR-PARITY'", [json.dumps({"rows": 1, "undecided": level}), r])
        ctx = compare_context(s, ids)
        levels = {r: undecided(s.findings(r)) for r in ids}
        findings = {r: s.findings(r) for r in ids}
    doubtful = {(f.pack, f.rule_id) for r in ids for f, lv in zip(findings[r].itertuples(), levels[r])
                if isinstance(lv, str)}
    assert ("baseline", "DEMO-FMR-PARITY") in doubtful
    listed = {(row["pack"], row["rule_id"]): row for row in ctx["findings"]}
    for key in doubtful:
        row = listed[key]  # listed, never counted as judged for none
        for r, status, could in zip(ids, row["statuses"], row["could_be"]):
            hit = findings[r][(findings[r]["pack"] == key[0]) & (findings[r]["rule_id"] == key[1])]
            level = levels[r].loc[hit.index[0]]
            assert could == (level if isinstance(level, str) else ""), (key, r)
    html = environment().get_template("compare.html.j2").render(**ctx, beside=None)
    table = html[html.index('id="findings"'):]
    assert table.count("could be fail: not passed") + table.count("could be warn: not passed") == sum(
        bool(c) for row in ctx["findings"] for c in row["could_be"])
    assert listed[("baseline", "DEMO-FMR-PARITY")]["could_be"] == ["warn", "fail"]
