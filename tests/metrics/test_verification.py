import numpy as np
import pytest

from audit.metrics import demographic as demo
from audit.metrics import verification as ver
from audit.metrics.stats import SubjectBootstrap


def test_threshold_never_exceeds_target_fmr():
    rng = np.random.default_rng(0)
    neg = rng.normal(0, 1, 10000)
    for fmr in (1e-1, 1e-2, 1e-3):
        tau = ver.threshold_at_fmr(neg, fmr)
        assert np.mean(neg >= tau) <= fmr
        assert np.mean(neg >= np.nextafter(tau, -np.inf) - 1e-9) >= fmr - 1 / len(neg)


def test_ties_at_threshold_count_as_rejections():
    neg = np.array([0.1, 0.5, 0.5, 0.5, 0.9])
    tau = ver.threshold_at_fmr(neg, 0.2)
    # Only the 0.9 impostor is accepted; the three tied at 0.5 are all rejected, never split.
    assert 0.5 < tau <= 0.9 and ver.fmr_fnmr(neg, np.array([0.5]), tau) == (0.2, 1.0)


def test_rule_of_30_operating_points():
    # 300 people: 44,850 person pairs; 1e-3 -> 44.9 expected false matches (supported), 1e-4 -> 4.5 (not)
    everyone = np.arange(300)
    assert ver.distinct_person_pairs(everyone, everyone) == 44_850
    points = {p.fmr: p for p in ver.operating_points(600_000, ver.distinct_person_pairs(everyone, everyone))}
    assert points[1e-2].supported and points[1e-3].supported
    assert not points[1e-4].supported and points[1e-4].needs_comparisons == 0
    assert points[1e-4].needs_person_pairs == 300_000 - 44_850
    assert points[1e-5].needs_comparisons == 3_000_000 - 600_000
    assert "needs 255150 more impostor person pairs" in points[1e-4].explain()


@pytest.mark.parametrize("a,b", [(range(5), range(5)), (range(4), range(2, 9)), (range(3), range(3, 6)),
                                 (range(1), range(1)), ([], range(3))])
def test_distinct_person_pairs_count_each_pair_of_persons_once(a, b):
    """The rule of 30's person pairs: {A, B} once whether A's probe meets B's gallery image or B's meets A's (identity
    counted both before 0.6.0, inversion one), never a person with themselves; checked by listing them."""
    a, b = np.asarray(list(a), int), np.asarray(list(b), int)
    listed = {frozenset((x, y)) for x in a for y in b if x != y}
    assert ver.distinct_person_pairs(a, b) == len(listed)


def test_identity_counts_each_pair_of_persons_once_for_the_rule_of_30(tmp_path):
    """60 persons give 1,770 distinct person pairs, short of the 3,000 FMR 1e-2 needs; counted in both directions
    (3,540, as before 0.6.0) the target was judged on half the person pairs the rule of 30 asks for."""
    from audit import api
    from audit.config import AuditConfig
    from audit.store import Store
    from audit.synth import Recipe, materialise
    from tests.builders import make_onnx

    data, _, _ = materialise(tmp_path / "d", Recipe(people=60, images=2), workers=1)
    cfg = AuditConfig(model=make_onnx(tmp_path / "m.onnx"), data=str(data), probes=["identity"], conditions=["clean"],
                      bootstrap=20, parity=False)
    run_id = api.run_audit(cfg, tmp_path / "s.duckdb")
    with Store(tmp_path / "s.duckdb", read_only=True) as s:
        m = s.metrics(run_id)
    assert set(m[m["metric"] == "threshold"]["setting"]) == {"fmr=0.01;unsupported"}


def test_supported_fmrs_explain_missing_targets():
    ok, why = ver.supported_fmrs(20000)
    assert ok == [1e-2, 1e-3] and "FMR 0.0001 needs at least 100000" in why[0] and "gives 20000" in why[0]


def test_eer_known_values():
    neg = np.linspace(0, 0.6, 101)
    pos = np.linspace(0.4, 1.0, 101)
    e = ver.eer(neg, pos)
    assert e.crossed and e.low <= e.mid <= e.high and abs(e.mid - 1 / 6) < 0.02
    perfect = ver.eer(np.array([0.1, 0.2]), np.array([0.8, 0.9]))
    assert perfect.mid == 0.0


@pytest.mark.parametrize("decimals", [None, 2, 1, 0])
def test_eer_and_auc_on_sorted_scores_equal_the_full_curve(decimals):
    """The full-sample EER (bisection on sorted scores) and AUC (genuine scores placed among the sorted impostors)
    give the bracket and area of the weighted curve (eer_auc_many with unit weights), ties and perfect separation
    included: they replaced it to keep the identity probe's memory at one sorted copy of its impostor scores."""
    from scipy.stats import rankdata

    rng = np.random.default_rng(decimals or 9)
    for _ in range(400):
        neg, pos = rng.normal(0, 1, rng.integers(1, 60)), rng.normal(rng.uniform(-1, 5), 1, rng.integers(1, 30))
        if decimals is not None:
            neg, pos = np.round(neg, decimals), np.round(pos, decimals)
        low, high, crossed, area = ver.eer_auc_many(neg, pos, np.ones((1, len(neg))), np.ones((1, len(pos))))
        e = ver.eer(neg, pos)
        assert (e.low, e.high, e.crossed) == (low[0], high[0], crossed[0])
        ranks = rankdata(np.r_[neg, pos])
        mann_whitney = (ranks[len(neg):].sum() - len(pos) * (len(pos) + 1) / 2) / (len(neg) * len(pos))
        assert ver.auc(neg, pos) == pytest.approx(mann_whitney, abs=1e-12) == pytest.approx(area[0], abs=1e-12)


def test_rank1_and_rank():
    scores = np.array([[0.9, 0.1, 0.2], [0.3, 0.2, 0.8]])
    probe, gallery = np.array(["a", "b"]), np.array(["a", "b", "c"])
    assert ver.rank1(scores, probe, gallery).tolist() == [1.0, 0.0]
    assert ver.rank_of_true(scores, probe, gallery).tolist() == [1, 3]


def test_demographic_summaries():
    fmr = {"a": 0.001, "b": 0.004}
    fnmr = {"a": 0.02, "b": 0.06}
    assert demo.ratio_max_min(fmr) == pytest.approx(4)
    assert demo.ratio_max_geomean(fmr) == pytest.approx(0.004 / np.sqrt(0.001 * 0.004))
    assert demo.fairness_discrepancy_rate(fmr, fnmr) == pytest.approx(1 - (0.5 * 0.003 + 0.5 * 0.04))
    assert demo.ratio_max_min({"a": 0.0, "b": 0.0}) == 1.0
    assert demo.ratio_max_min({"a": 0.0, "b": 0.1}) == float("inf")


def test_subject_bootstrap_is_seeded_and_covers_truth():
    rng = np.random.default_rng(1)
    subjects = np.repeat(np.arange(200), 5)
    person_effect = rng.normal(0, 1, 200)[subjects]
    x = 0.3 + person_effect + rng.normal(0, 0.2, len(subjects))
    a = SubjectBootstrap(subjects, 300, seed=4).estimate(lambda i: x[i].mean())
    b = SubjectBootstrap(subjects, 300, seed=4).estimate(lambda i: x[i].mean())
    assert a == b
    assert a.ci_low < 0.3 < a.ci_high
    # Image-level resampling would be ~sqrt(5) times narrower; the subject bootstrap is not.
    assert a.ci_high - a.ci_low > 2 * 1.96 * x.std() / np.sqrt(len(x))


def test_auc_is_the_mann_whitney_statistic_sklearn_computes():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    for n0, n1, decimals in ((4000, 300, 2), (50, 50, 1), (7, 3, 0)):  # rounding makes ties
        neg, pos = rng.normal(0, 1, n0).round(decimals), rng.normal(1, 1, n1).round(decimals)
        want = roc_auc_score(np.r_[np.zeros(n0), np.ones(n1)], np.r_[neg, pos])
        assert abs(ver.auc(neg, pos) - want) < 1e-12
    assert ver.auc(np.zeros(3), np.ones(2)) == 1.0 and ver.auc(np.ones(3), np.ones(2)) == 0.5
    with pytest.raises(ValueError):
        ver.auc(np.zeros(0), np.ones(2))


def _eer_on_curve(neg, pos):
    """The EER bracket read straight off scikit-learn's full ROC curve (a point at every distinct score)."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(np.r_[np.zeros(len(neg)), np.ones(len(pos))], np.r_[neg, pos], drop_intermediate=False)
    fnr = 1 - tpr
    i = int(np.flatnonzero(fpr - fnr >= 0)[0])
    lo, hi = max(fpr[i - 1], fnr[i]), min(fpr[i], fnr[i - 1])
    return min(lo, hi), max(lo, hi)


def test_weighted_eer_and_auc_equal_the_statistic_on_each_person_resample():
    """The identity probe's bootstrap weighs scores by how often their person was drawn instead of rebuilding
    each resample: on every resample that must give the EER and AUC of the resample's own scores, ties included."""
    rng = np.random.default_rng(5)
    n_people, per = 40, 3
    pos_owner = np.repeat(np.arange(n_people), per)
    neg_owner = np.repeat(np.arange(n_people), 25)
    pos = rng.normal(1.2, 1, len(pos_owner)).round(1)  # rounding makes ties within and across the two sides
    neg = rng.normal(0, 1, len(neg_owner)).round(1)
    for a, b in ((neg, pos), (neg[:5], pos[:3])):
        low, high, crossed, area = ver.eer_auc_many(a, b, np.ones((1, len(a))), np.ones((1, len(b))))
        assert (low[0], high[0]) == pytest.approx(_eer_on_curve(a, b), abs=1e-12) and crossed[0]
        assert area[0] == pytest.approx(ver.auc(a, b))
    boot = SubjectBootstrap(pos_owner, 30, 0, "weights")
    weights = np.concatenate(list(boot.image_weights(chunk=7)))
    assert weights.shape == (30, len(pos)) and weights.sum(1).tolist() == [len(pos)] * 30
    person_w = weights[:, ::per]  # each person's weight, read off their first image
    low, high, _, areas = ver.eer_auc_many(neg, pos, person_w[:, neg_owner], weights)
    for r, draw in enumerate(boot.draws):
        rows_pos = np.concatenate([np.flatnonzero(pos_owner == p) for p in draw])
        rows_neg = np.concatenate([np.flatnonzero(neg_owner == p) for p in draw])
        assert (low[r], high[r]) == pytest.approx(_eer_on_curve(neg[rows_neg], pos[rows_pos]), abs=1e-12)
        assert areas[r] == pytest.approx(ver.auc(neg[rows_neg], pos[rows_pos]), abs=1e-12)


def test_plotted_roc_of_many_impostors_thins_them_within_k_over_n(monkeypatch):
    """Above ROC_EXACT impostor scores the plotted curve is drawn from every k-th of them (each weighing k): its FMR
    at every plotted threshold is within k / n of the exact one."""
    rng = np.random.default_rng(4)
    neg, pos = rng.normal(0, 1, 50_000), rng.normal(3, 1, 800)
    exact = ver.roc_points(neg, pos)
    monkeypatch.setattr(ver, "ROC_EXACT", 5_000)
    thin = ver.roc_points(neg, pos)
    k = 10
    assert exact != thin and len(thin["fmr"]) > 100
    for fmr, thr in zip(thin["fmr"], thin["threshold"]):
        if thr < 1.0:  # the "accept nothing" point is drawn at threshold 1
            assert abs(fmr - np.mean(neg >= thr)) <= k / len(neg) + 1e-12


def test_presorted_negatives_give_the_same_threshold_eer_and_auc():
    """The identity probe sorts its impostor scores once and passes them to all three."""
    rng = np.random.default_rng(21)
    neg, pos = np.round(rng.normal(0, 1, 3000), 2), rng.normal(2, 1, 200)
    ascending = np.sort(neg)
    assert ver.threshold_at_fmr(ascending, 0.01, presorted=True) == ver.threshold_at_fmr(neg, 0.01)
    assert ver.eer(ascending, pos, presorted=True) == ver.eer(neg, pos)
    assert ver.auc(ascending, pos, presorted=True) == ver.auc(neg, pos)


def test_a_rate_without_errors_is_floored_on_its_distinct_person_pairs():
    """FMR with no false match among 20 persons: the exact-binomial floor counts the 190 distinct person pairs compared
    (A against B and B against A are one pair, as the rule of 30 counts them), not 380 ordered ones."""
    from audit.metrics.stats import clopper_pearson

    subjects = np.repeat([f"p{i:02d}" for i in range(20)], 2)
    boot = SubjectBootstrap(subjects, 50, 0, "floor")
    compared = np.ones((20, 20)) - np.eye(20)
    est = boot.two_way(np.zeros((20, 20)), compared)
    assert est.value == 0 and est.ci_high == pytest.approx(clopper_pearson(0.0, 190)[1])
