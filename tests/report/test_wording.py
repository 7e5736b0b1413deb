"""Wording a signer reads and may act on: nothing may read as milder than the numbers. Each test renders the real
templates (the every-probe run's context, with one part replaced where the run cannot produce the case)."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from audit.devices import describe
from audit.report import narrative
from audit.report.render import environment, query_limit, run_context
from audit.store import Store


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'")


@pytest.fixture(scope="module")
def context(every_probe):
    db, run_id, _ = every_probe
    with Store(db, read_only=True) as s:
        return run_context(s, run_id, no_faces=True)


def render(ctx: dict, **replace) -> str:
    return environment().get_template("report.html.j2").render(**{**ctx, **replace}, attestation=None,
                                                               quality_file=None)


COLUMNS = ["probe", "metric", "condition", "setting", "attribute", "group", "value", "ci_low", "ci_high"]
NO_METRICS = pd.DataFrame(columns=COLUMNS)


def metrics(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"attribute": "", "group": "all", **r} for r in rows], columns=COLUMNS)


def finding(rule_id, status="fail", severity="high", metric="normalised_gain", **location):
    loc = {"condition": "clean", "attribute": "sex", "setting": "train=same", "value": 0.5, "ci_low": 0.4,
           "ci_high": 0.6, **location}
    return {"pack": "p", "rule_id": rule_id, "title": f"Rule {rule_id}", "status": status, "severity": severity,
            "metric": metric, "probe": "leakage", "observed": loc["value"], "message": "",
            "location": json.dumps(loc)}


def test_a_cut_list_of_problems_says_how_many_fails_and_warnings_it_leaves_out_and_where(context):
    # eight distinct fails (each on another attribute, so another sentence), one duplicate and two warnings
    rows = [finding(f"F{i}", attribute=f"a{i}") for i in range(8)] + [finding("DUP", attribute="a0")] + \
        [finding(f"W{i}", status="warn", attribute=f"w{i}") for i in range(2)]
    v = narrative.verdict(pd.DataFrame(rows), NO_METRICS, [], [], [])
    assert len(v["problems"]) == 5
    page = _text(render(context, verdict=v))
    summary = page[page.index("What is wrong."):page.index("Headline numbers") if "Headline" in page else None]
    # F0 and its duplicate are listed; F5-F7 (3 fails) and both warnings are not
    assert ("Not listed here: 3 more failed rules and 2 warnings (9 fails and 2 warnings in all; rules that judge "
            "the same number are listed once above). Every one is in the Findings table below.") in summary
    assert 'href="#findings-table">Findings table</a>' in render(context, verdict=v)
    # a list that is not cut says nothing more
    short = narrative.verdict(pd.DataFrame(rows[:3]), NO_METRICS, [], [], [])
    assert short["more"] is None and "Not listed here" not in _text(render(context, verdict=short))


def test_the_summary_names_the_model_that_accepts_reconstructions_and_the_audited_models_own_figure(context):
    inv = metrics([
        {"probe": "inversion", "metric": "sar_type1", "condition": "mask:surgical", "setting": s, "value": v,
         "ci_low": lo, "ci_high": hi}
        for s, v, lo, hi in (("black-box;evaluator;fmr=0.001", 0.7325, 0.6689, 0.7856),
                             ("black-box;target;fmr=0.001", 0.58, 0.5163, 0.6424))])
    f = finding("INV", metric="sar_type1", condition="mask:surgical", attribute="",
                setting="black-box;evaluator;fmr=0.001", value=0.7325, ci_low=0.6689, ci_high=0.7856)
    v = narrative.verdict(pd.DataFrame([f]), inv, [], [], [])
    html = render(context, verdict=v)
    page = _text(html[html.index('class="verdict"'):html.index('class="counts"')])
    assert ("faces that an independent face-recognition model (the evaluator) accepts as the person: 73.2% of "
            "reconstructions (95% CI 66.9%–78.6%); the audited model itself accepts 58.0% (95% CI 51.6%–64.2%)."
            ) in page
    assert "that the system accepts" not in page and "of people" not in page


def test_the_query_limit_sentence_follows_the_curve(context):
    flat = {"curve": {"queries": [1, 21, 41], "sar_type1": {"0.001": [1.0, 1.0, 1.0], "0.01": [1.0, 1.0, 1.0]}}}
    rising = {"curve": {"queries": [1, 21, 41], "sar_type1": {"0.001": [0.25, 0.25, 0.9]}}}
    inv = context["inversion"]
    base = {**inv, "query": {"victims": 48, "budget": 200, "queries_per_victim": 41.0, "decoder_queries": 600}}
    page = _text(render(context, inversion={**base, "query_limit": query_limit(flat)}))
    assert "below the point where the curve rises would stop" not in page
    assert ("The decoder's image alone (the first query) is accepted for 100% of victims at FMR 0.001, as many as "
            "after 41 queries: within this budget the queries added nothing, so a limit on queries per template would "
            "not lower the 100% the decoder's image achieves; a larger budget may still add more.") in page
    page = _text(render(context, inversion={**base, "query_limit": query_limit(rising)}))
    assert ("A limit of 21 queries per template (the last count measured before it rose) would hold this attacker "
            "to the 25% of victims the decoder's image alone achieves.") in page
    assert "would not lower" in query_limit({"curve": {"queries": [1], "sar_type1": {"0.01": [0.5]}}})
    assert "cannot say" in query_limit(None)


def test_the_query_curve_sentence_reads_no_safety_into_a_zero_and_no_ceiling_into_a_rising_curve():
    """Review F6: a curve at zero read 'this run shows no need for a limit on queries per template'; the README's own
    ArcFace curve, still rising when the quick budget ran out, read 'reaches 94%' as if that were the ceiling; a flat
    5% curve read 'the decoder alone already succeeds'."""
    zero = query_limit({"curve": {"queries": [1, 21, 181], "sar_type1": {"0.001": [0.0, 0.0, 0.0]}}})
    assert "no need" not in zero
    assert zero.startswith("No victim's image was accepted at FMR 0.001 within 181 queries per victim. This does not "
                           "show that templates cannot be inverted with more queries")
    arc = query_limit({"curve": {"queries": [1, 21, 41, 81, 161, 181],
                                 "sar_type1": {"0.001": [0.10, 0.40, 0.60, 0.80, 0.896, 0.938]}}})
    assert "is 94% when the budget of 181 queries ran out, still rising: a larger budget would likely reach more" in arc
    level = query_limit({"curve": {"queries": [1, 21, 41, 81], "sar_type1": {"0.001": [0.10, 0.40, 0.60, 0.60]}}})
    assert "reaches 60% within 81 queries" in level and "still rising" not in level
    flat = query_limit({"curve": {"queries": [1, 21, 181], "sar_type1": {"0.001": [0.05, 0.05, 0.05]}}})
    assert "already succeeds" not in flat and "a larger budget may still add more" in flat


def test_the_query_attackers_chance_level_is_the_best_of_its_tries():
    """Review F7: every inversion sentence ended 'against about 0.1% by chance', the query attacker's too, though it
    keeps the best of its 181 submissions (181 unrelated faces pass at FMR 1e-3 about 16.6% of the time)."""
    rows = metrics([{"probe": "inversion", "metric": "sar_type1", "condition": "clean", "setting": s, "value": 0.9,
                     "ci_low": 0.8, "ci_high": 0.95} for s in ("query;target;fmr=0.001", "black-box;target;fmr=0.001")])
    query, black = sorted(narrative.inversion_verdicts(rows, 181.0), key=lambda t: "query" not in t)
    assert "against up to about 16.6% for 181 unrelated faces submitted (the best of that many tries" in query
    assert "0.1% by chance" not in query and black.endswith("against about 0.1% by chance).")
    # One sentence per attack and condition names every judge, the audited model first (the print had one sentence
    # per judge, and masked templates attacked white-box pushed the demo reports past 12 pages)
    both = metrics([{"probe": "inversion", "metric": "sar_type1", "condition": "mask:surgical", "setting": s,
                     "value": v, "ci_low": v - 0.1, "ci_high": v + 0.05}
                    for s, v in (("white-box;evaluator;fmr=0.001;unsupported", 0.5),
                                 ("white-box;target;fmr=0.001;unsupported", 0.9))])
    [said] = narrative.inversion_verdicts(both, 200.0)
    assert said.startswith("Someone holding the model file rebuilds, from templates of faces with a surgical mask "
                           "(mask:surgical), faces accepted as the person by the audited model in 90.0% of cases "
                           "(95% CI 80.0 to 95.0%, against about 0.1% by chance) and by an independent "
                           "face-recognition model in 50.0% of cases"), said
    assert said.endswith("so no rule passes on these figures.")


def test_membership_at_chance_is_not_said_to_be_told():
    """Review F3: ArcFace, which never saw the persons, flagged 10.2% of members (95% CI 4.9 to 17.9%) while the
    thresholds accused 11.7% of non-members, and the report said the attacker 'can tell' for 10.2% of members. The
    members flagged are now compared with the false-positive rate the thresholds reached (what accusing at random
    flags): only a lower end above it is told as disclosure."""
    chance = metrics([
        {"probe": "membership", "metric": "membership_tpr_at_fpr", "condition": "clean", "setting": "strongest;fpr=0.1",
         "value": 0.102, "ci_low": 0.049, "ci_high": 0.179},
        {"probe": "membership", "metric": "membership_fpr", "condition": "clean", "setting": "strongest;fpr=0.1",
         "value": 0.117, "ci_low": 0.08, "ci_high": 0.16}])
    said = narrative.membership_verdicts(chance)[0]
    assert "can tell" not in said
    assert said.startswith("An attacker who has a person's photos is not shown to do better than accusing persons at "
                           "random: aiming to accuse 10.0% of non-members (it accused 11.7%")
    rows = [finding("M1", metric="membership_tpr_at_fpr", attribute="", setting="strongest;fpr=0.1", value=0.102,
                    ci_low=0.049, ci_high=0.179)]
    meaning = narrative.verdict(pd.DataFrame(rows), chance, [], [], [])["problems"][0]["meaning"]
    assert "can tell" not in meaning and "is not shown to do better than accusing persons at random" in meaning
    assert "random accusations flag 11.7% of both" in meaning
    # Above chance it is told, with what random accusations would flag beside it.
    told = chance.assign(value=[0.26, 0.107], ci_low=[0.18, 0.07], ci_high=[0.35, 0.15])
    said = narrative.membership_verdicts(told)[0]
    assert said.startswith("An attacker who has a person's photos can tell whether they were in the training data for "
                           "26.0% of members") and said.endswith("Accusing persons at random would flag 10.7% of members.")


def test_the_appendix_says_which_gradient_attacks_ran_in_bfloat16(context):
    words = describe({"device": "cpu", "backend": "ort", "provider": "CPUExecutionProvider", "torch_device": "cpu",
                      "attack_precision": "bfloat16"})
    page = _text(render(context, computed_on=words))
    assert "gradient attacks in bfloat16" not in page
    assert ("gradient attacks on cpu: cloak attacks and inversion decoder training in bfloat16 autocast, white-box "
            "inversion in float32") in page


def test_traceability_points_at_the_rules_not_judged_list(context):
    judged = [{"reason": "probe not run: cloak", "rules": ["p · R"]}]
    html = render(context, not_judged=judged)
    trace = _text(html[html.index('id="traceability"'):html.index('id="system"')])
    assert "listed once in the executive summary" not in trace
    assert "the rules not judged (and why) are listed once, under Rules not judged after the Findings table" in trace
    assert '<h3 id="not-judged">Rules not judged</h3>' in html and 'href="#not-judged"' in html


def test_fdr_is_not_read_as_parity_when_a_fmr_ratio_fails_and_the_control_is_named(context):
    rows = [{"probe": "identity", "metric": m, "condition": "clean", "setting": "fmr=0.001", "attribute": a,
             "value": v, "ci_low": lo, "ci_high": hi}
            for m, a, v, lo, hi in (("fdr", "age", 0.99, 0.99, 1.0), ("fmr_max_min", "age", 8.34, 1.97, float("inf")),
                                    ("fdr", "control", 1.0, 1.0, 1.0), ("fmr_max_min", "control", 1.0, 1.0, 2.0))]
    failing = pd.DataFrame([finding("AIA-FMR", metric="fmr_max_min", attribute="age", setting="fmr=0.001",
                                    value=8.34, ci_low=1.97, ci_high=None)])
    verdicts = narrative.identity_verdicts(metrics(rows), failing)
    page = _text(render(context, identity={**context["identity"], "verdicts": verdicts}))
    assert "(1 means equal error rates)" not in page and "control groups" not in page
    assert "so an FDR near 1 does not show parity: the ratio of group false match rates is reported and judged " \
        "separately." in page
    assert ("Across age groups: FDR 0.99 (95% CI 0.99 to 1.00); the most falsely matched group's rate is 8.3 times "
            "the least's (95% CI 2.0 to no upper bound). Disparity rules on it: AIA-FMR fails (see Findings).") in page
    assert "Negative control (a random label in no image, not a demographic group; expected at parity): FDR" in page


def test_the_every_probe_report_carries_none_of_the_old_wording(every_probe, tmp_path):
    from audit import api

    db, run_id, _ = every_probe
    page = _text(api.build_report(run_id, db, tmp_path, ["html"])[0].read_text())
    for old in ("below the point where the curve rises would stop", "listed once in the executive summary",
                "(1 means equal error rates)", "control groups", "that the system accepts as the person",
                "gradient attacks in bfloat16"):
        assert old not in page, old


def test_inversion_rules_cite_template_protection_not_presentation_attack_detection():
    from audit.rules.engine import load_packs

    inversion = [r for p in load_packs() for r in p.rules if r.probe == "inversion"]
    assert inversion
    for rule in inversion:
        assert not any("30107" in ref for ref in rule.references), rule.id  # PAD: presentation to a sensor
    query = next(r for r in inversion if r.id == "ISO24745-IRREVERSIBILITY-QUERY")
    assert query.references == ["ISO/IEC 24745:2022 5.3", "ISO/IEC 30136:2018"]


def test_the_cloak_table_gives_each_psr_its_interval(every_probe, context):
    """A PSR@1 of 0.40 from 12 protected persons and one from 300 are different claims: every cell of the cloak
    table carries its 95% interval from the store (the table printed bare values until 2026-12-05)."""
    db, run_id, _ = every_probe
    with Store(db, read_only=True) as s:
        psr = s.metrics(run_id)
    psr = psr[(psr["probe"] == "cloak") & (psr["metric"] == "psr_at_1")]
    assert len(psr) and psr["ci_low"].notna().all()
    page = _text(render(context))
    section = page[page.index("PSR@1 by method, budget and purifier"):page.index("Did the cloak attacks converge?")]
    for r in psr.itertuples():
        cell = f"{narrative.fmt(r.value, 2)} {narrative.fmt(r.ci_low, 2)} – {narrative.fmt(r.ci_high, 2)}"
        assert cell in section, (r.condition, r.setting, cell)
    # one interval per stored result, none invented (a best cloak's purifier cells are empty: "–")
    assert len(re.findall(r"\d\.\d\d – \d\.\d\d", section)) == len(psr)


def test_membership_findings_say_who_can_tell_what_about_whom():
    """Page one's sentence for a membership finding names the attacker, what they learn and the false accusations its
    threshold was set for, with the interval; an operating point too few non-members back says it is indicative only
    and what the threshold reached; the AUC says 'better than chance' only when its interval does. No metric
    identifier reaches the sentence (it printed 'Membership_auc = 0.59')."""
    rows = [finding("M1", metric="membership_tpr_at_fpr", attribute="", setting="strongest;fpr=0.01;unsupported",
                    value=0.31, ci_low=0.2, ci_high=0.4),
            finding("M2", status="warn", metric="membership_auc", attribute="", setting="strongest", value=0.59,
                    ci_low=0.53, ci_high=0.65),
            finding("M3", status="warn", metric="membership_auc", attribute="", setting="tightness", value=0.52,
                    ci_low=0.47, ci_high=0.57)]
    reached = metrics([{"probe": "membership", "metric": "membership_fpr", "condition": "clean",
                        "setting": "strongest;fpr=0.01;unsupported", "value": 0.023, "ci_low": 0.01, "ci_high": 0.04}])
    meanings = [p["meaning"] for p in narrative.verdict(pd.DataFrame(rows), reached, [], [], [])["problems"]]
    assert meanings[0] == ("Someone holding a person's photos and the model's outputs can tell that a person was in "
                           "the training data for 31.0% of those who were (95% CI 20.0%–40.0%) at a threshold set to "
                           "wrongly accuse 1.0% of persons who were not in it; too few non-member persons back that "
                           "rate, so the figure is indicative only (the threshold accused 2.3% of held-out "
                           "non-members).")
    assert "from others better than chance: a member scores above a non-member with probability 0.59 (95% CI 0.53 " \
           "to 0.65; 0.50 = cannot tell)." in meanings[1]
    assert "from others not clearly better than chance: a member scores above a non-member with probability 0.52" \
        in meanings[2]
    assert not any("membership_" in m.lower() for m in meanings)


def test_sentences_name_attributes_and_conditions_in_words_with_the_tables_name_beside():
    """'Skin_tone can be read ... with mask:cloth' was how page one began; a sentence now says 'skin tone' and 'a cloth
    mask (mask:cloth)', the name the tables and CSVs use kept in parentheses (once, where words and name are one).
    Names without words are left alone."""
    assert narrative.cond_words("mask:cloth") == "a cloth mask (mask:cloth)"
    assert narrative.cond_words("mask:n95@template") == "an N95 mask drawn the same for everyone (mask:n95@template)"
    assert narrative.cond_words("mask:surgical+sunglasses") == \
        "a surgical mask and sunglasses (mask:surgical+sunglasses)"
    assert narrative.cond_words("patch:0.25") == "25% of the face greyed out in patches (patch:0.25)"
    assert narrative.cond_words("patch:0.004") == "0.4% of the face greyed out in patches (patch:0.004)"
    for name in ("cloak:opom-affine@8+purify:jpeg75", "mask:", "newthing:3", "patch:0.3@template"):
        assert narrative.cond_words(name) == name
    rows = [finding("F1", attribute="skin_tone", condition="mask:cloth"),
            finding("F2", attribute="sex", condition="sunglasses", metric="fnmr_max_min", value=2.5)]
    meanings = [p["meaning"] for p in narrative.verdict(pd.DataFrame(rows), NO_METRICS, [], [], [])["problems"]]
    assert meanings[0].startswith("Skin tone can be read from the model's templates with a cloth mask (mask:cloth):")
    assert meanings[1] == ("One sex group is falsely rejected 2.5 times as often as another with sunglasses (95% CI "
                           "0.4 to 0.6).")
    assert not any("skin_tone" in m for m in meanings)


def test_a_disparity_beyond_the_worst_attribute_is_named_on_its_own_attribute(context):
    """A parity rule aggregated over attributes names its worst row (age); sex reaching the warn limit too must not
    read as within limits: the engine keeps every row that reaches a limit, and the sex sentence says so."""
    from audit.rules.engine import Rule, evaluate_rule

    rows = [{"probe": "identity", "metric": m, "condition": "clean", "setting": "fmr=0.001", "attribute": a,
             "value": v, "ci_low": lo, "ci_high": hi, "group": "all", "run_id": "r", "n": 10, "direction": "neutral"}
            for m, a, v, lo, hi in (("fmr_max_min", "age", 8.3, 5.5, 12.0), ("fmr_max_min", "sex", 2.9, 2.03, 5.0),
                                    ("fmr_max_min", "skin_tone", 1.5, 1.1, 2.5), ("fdr", "sex", 0.99, 0.98, 1.0),
                                    ("fdr", "skin_tone", 0.99, 0.98, 1.0))]
    rule = Rule.model_validate(dict(id="P", title="t", probe="identity", metric="fmr_max_min", where={"condition": "clean"},
                                    warn_if="> 2", fail_if="> 5", use="ci_low"))
    f = evaluate_rule(rule, pd.DataFrame(rows), {"identity"})
    assert f.status == "fail" and f.location["attribute"] == "age"
    assert [(b["attribute"], b["level"]) for b in f.location["breaches"]] == [("age", "fail"), ("sex", "warn")]
    found = pd.DataFrame([{"pack": "p", "rule_id": "P", "title": "t", "status": f.status, "severity": "high",
                           "metric": "fmr_max_min", "probe": "identity", "observed": f.observed, "message": f.message,
                           "location": json.dumps(f.location)}])
    verdicts = narrative.identity_verdicts(metrics(rows), found)
    page = _text(render(context, identity={**context["identity"], "verdicts": verdicts}))
    assert "the least's (95% CI 2.0 to 5.0). Disparity rules on it: P warns (see Findings)." in page
    assert "the least's (95% CI 1.1 to 2.5). Disparity rules" not in page  # skin tone stays within the limits


def test_the_identity_paragraph_names_the_rejection_ratio_the_groups_and_which_rule_fails_on_which():
    """On LFW the FNMR ratio failed (female 5.5% vs male 0.7%) while the FMR ratio only warned: the paragraph must
    put both ratios and the groups in words and name the rule behind each status, not 'a disparity rule fails'."""
    base = {"probe": "identity", "condition": "clean", "setting": "fmr=0.001", "attribute": "sex"}
    rows = [{**base, "metric": m, "group": g, "value": v, "ci_low": lo, "ci_high": hi}
            for m, g, v, lo, hi in (("fdr", "all", 0.98, 0.95, 0.99), ("fmr_max_min", "all", 2.9, 1.9, 4.3),
                                    ("fnmr_max_min", "all", 7.4, 1.98, float("inf")),
                                    ("group_fnmr", "female", 0.055, 0.025, 0.1), ("group_fnmr", "male", 0.0074, 0.0, 0.02),
                                    ("group_fmr", "female", 0.002, 0.001, 0.003), ("group_fmr", "male", 0.0007, 0.0004, 0.001))]
    found = pd.DataFrame([finding(rid, status=st, metric=m, attribute="sex", setting="fmr=0.001", value=v)
                          for rid, st, m, v in (("FMR-P", "warn", "fmr_max_min", 2.9), ("FNMR-P", "fail", "fnmr_max_min", 7.4))])
    text = narrative.identity_verdicts(pd.DataFrame(rows), found)[-1]
    (fails,) = [p["meaning"] for p in narrative.verdict(found, pd.DataFrame(rows), [], [], [])["problems"]
                if "rejected" in p["meaning"]]
    assert fails == ("One sex group is falsely rejected 7.4 times as often as another (95% CI 0.4 to 0.6): female "
                     "5.5%, male 0.7%.")
    assert ("the most falsely matched group's rate is 2.9 times the least's (95% CI 1.9 to 4.3): female 0.20% (95% CI "
            "0.10%–0.30%), male 0.07%") in text
    assert ("the most falsely rejected group's rate is 7.4 times the least's (95% CI 2.0 to no upper bound): female "
            "5.5% (95% CI 2.5%–10.0%), male 0.7%") in text
    assert text.endswith("Disparity rules on it: FNMR-P fails, FMR-P warns (see Findings).")


def test_the_negative_control_is_reported_over_every_estimate_not_its_most_reassuring_one(context):
    """The control's sentence counts its estimates above chance and quotes the largest; an attribute whose most
    protective occlusion hides it says under how many other occlusions it stays readable."""
    def leak(attr, cond, v, lo, hi, setting="train=same"):
        return {"probe": "leakage", "metric": "normalised_gain", "condition": cond, "setting": setting,
                "attribute": attr, "value": v, "ci_low": lo, "ci_high": hi}

    rows = [leak("control", "clean", 0.02, -0.1, 0.14), leak("control", "mask:cloth", 0.01, -0.1, 0.12),
            leak("control", "sunglasses", 0.15, 0.04, 0.26), leak("control", "sunglasses", 0.12, 0.01, 0.23,
                                                                   "train=clean"),
            leak("sex", "clean", 0.5, 0.4, 0.6), leak("sex", "mask:cloth", 0.05, -0.05, 0.15),
            leak("sex", "mask:n95", 0.3, 0.2, 0.4), leak("sex", "sunglasses", 0.45, 0.35, 0.55)]
    verdicts = narrative.leakage_verdicts(metrics(rows))
    page = _text(render(context, leakage={**context["leakage"], "verdicts": verdicts}))
    assert ("negative control (a random label): 2 of its 4 estimates lie above chance with 95% intervals that exclude "
            "0 (the largest 0.15 (95% CI 0.04 to 0.26), sunglasses, attacker trained on such faces). A random label "
            "should be readable nowhere") in page
    assert "Under a cloth mask (mask:cloth) leakage is not distinguishable from chance (0.05 (95% CI -0.05 to 0.15)). " \
        "It stays readable under 2 of the other 2 occlusions (up to 0.45 (95% CI 0.35 to 0.55) under sunglasses)." in page
    quiet = narrative.leakage_verdicts(metrics([r for r in rows if not (r["attribute"] == "control" and
                                                                        r["ci_low"] > 0)]))
    assert "at chance everywhere it was measured (each of its 2 estimates' 95% intervals holds 0" in quiet[0].replace(
        "&#39;", "'")


def test_the_fdr_paragraph_names_the_rate_it_was_measured_at_and_when_too_few_comparisons_back_it(context):
    rows = [{"probe": "identity", "metric": "fdr", "condition": "clean", "setting": "fmr=0.01;unsupported",
             "attribute": "sex", "value": 0.99, "ci_low": 0.97, "ci_high": 1.0}]
    text = " ".join(narrative.identity_verdicts(metrics(rows), pd.DataFrame(columns=["status"])))
    assert "At a threshold set for about one false match in 100, FMR gaps" in text and "thousand" not in text
    assert "Too few impostor comparisons back that rate (rule of 30)" in text
    rows[0]["setting"] = "fmr=0.001"
    text = " ".join(narrative.identity_verdicts(metrics(rows), pd.DataFrame(columns=["status"])))
    assert "one false match in 1,000" in text and "Too few" not in text


def test_a_purifier_is_said_to_leave_only_so_much_protection_when_the_intervals_show_it():
    def m(purified):
        return pd.DataFrame([{"cloak": "cloak:pgd@8", "setting": "white-box", "purifier": p, "value": v,
                              "ci_low": lo, "ci_high": hi} for p, v, lo, hi in (("none", 0.4, 0.3, 0.5), purified)])
    (text,) = narrative.cloak_verdicts(m(("jpeg75", 0.45, 0.35, 0.55)))
    assert "only" not in text and text.endswith("after jpeg75 45% (95% CI 35 to 55%).")
    (text,) = narrative.cloak_verdicts(m(("jpeg75", 0.05, 0.01, 0.1)))
    assert "hides the person in 40% of cloaked photos (95% CI 30 to 50%); after jpeg75 only 5%" in text


def test_page_one_says_when_the_model_does_not_do_its_job_on_the_data(context):
    """fr-baseline on LFW rejected 94% of genuine users and passed every parity rule: the preprocessing check's note
    that no candidate makes it work belongs on page one, not only in the System under test table."""
    summary = lambda page: page[page.index("Executive summary"):page.index("Headline numbers")]  # noqa: E731
    note = ("no candidate makes the model do its job (best AUC 0.722): the check cannot tell a wrong profile from a "
            "weak model")
    scores = [{"label": "rgb", "setting": "RGB", "in_use": True, "score": 0.72},
              {"label": "bgr", "setting": "BGR", "in_use": False, "score": 0.70}]
    page = _text(render(context, preprocessing={"scores": scores, "note": note, "better": None, "persons": 300,
                                                "images": 697, "measure": "AUC"}))
    assert "The model does not do its job on this data. No candidate makes the model do its job" in summary(page)
    page = _text(render(context, preprocessing={"scores": scores, "note": None, "better": None, "persons": 300,
                                                "images": 697, "measure": "AUC"}))
    assert "does not do its job" not in summary(page)


def test_an_attribute_no_pack_reads_is_named_on_page_one(context):
    """A sex column named 'geschlecht' is measured and then judged by nothing: page one must say so rather than let
    the missing sex findings pass unnoticed (the shipped packs read the control and the demographic names)."""
    from audit.rules import load_pack
    from audit.rules.engine import attributes_unread

    rows = [{"probe": p, "metric": m, "condition": "clean", "setting": s, "attribute": a, "group": "all",
             "value": 0.5, "ci_low": 0.4, "ci_high": 0.6}
            for a in ("sex", "geschlecht", "control") for p, m, s in (("leakage", "normalised_gain", "train=same"),
                                                                      ("identity", "fnmr_max_min", "fmr=0.001"))]
    packs = [load_pack(p) for p in ("baseline", "eu-ai-act", "iso-biometrics")]
    assert attributes_unread(packs, pd.DataFrame(rows)) == ["geschlecht"]
    assert attributes_unread(packs, pd.DataFrame(rows[:2])) == []
    page = _text(render(context, unread={"attributes": ["geschlecht"], "unchecked": []}))
    assert "Measured but judged by no rule: attribute geschlecht (the packs read attributes by name" in page
    page = _text(render(context, unread={"attributes": ["geschlecht"], "unchecked": ["my-policy"]}))
    assert "not checked against my-policy, given as a file)." in page
    assert "Measured but judged by no rule" not in _text(render(context))  # the every-probe run: all read


def test_a_mask_raising_leakage_on_faces_aligned_beforehand_is_not_blamed_on_its_outline(tmp_path, small_data):
    """On a folder made by 'faceaudit prepare' every face has the same landmarks, so the mask is drawn identically
    for everyone: the report must not suggest its outline follows each face nor ask for an @template run."""
    import shutil

    from audit.data import load
    from audit.run.results import _same_landmarks

    rows = [{"probe": "leakage", "metric": m, "condition": c, "setting": "train=same", "attribute": "sex",
             "value": v, "ci_low": v - 0.1, "ci_high": v + 0.1}
            for m, c, v in (("normalised_gain", "clean", 0.5), ("normalised_gain", "mask:surgical", 0.8),
                            ("mask_effect", "mask:surgical", 0.3))]
    (text,) = narrative.leakage_verdicts(metrics(rows), same_landmarks=True)
    assert "drawn identically for everyone: the part of the face left visible carries it" in text
    assert "@template" not in text and "own landmarks" not in text
    (text,) = narrative.leakage_verdicts(metrics(rows))
    assert "own landmarks" in text and "mask:surgical@template" in text
    ds = load(small_data)
    assert not _same_landmarks(ds, ds.faces())
    root = tmp_path / "aligned"
    shutil.copytree(small_data, root)
    m = pd.read_csv(root / "manifest.csv")
    lm = [c for c in m.columns if c.startswith("lm")]
    m[lm] = m[lm].iloc[0].to_numpy()
    m.to_csv(root / "manifest.csv", index=False)
    ds = load(root)
    assert _same_landmarks(ds, ds.faces())


def test_attributes_no_pack_reads_are_found_for_a_pack_given_as_a_file(tmp_path):
    """Each finding records what its rule read, so a report names the attributes no applied pack read even for a
    pack given as a file that is not at hand when the report is made (it used to say 'not checked')."""
    from audit.report.render import _unread_attributes
    from audit.rules import load_pack
    from audit.rules.engine import evaluate

    rows = [{"probe": "leakage", "metric": "normalised_gain", "condition": "clean", "setting": "train=same",
             "attribute": a, "group": "all", "value": 0.5, "ci_low": 0.4, "ci_high": 0.6}
            for a in ("sex", "geschlecht")]
    metrics = pd.DataFrame(rows)
    text = Path(load_pack("baseline").source).read_text().replace("pack: baseline", "pack: my-policy", 1)
    path = tmp_path / "my-policy.yaml"
    path.write_text(text)
    pack = load_pack(str(path))
    assert pack.pack == "my-policy"
    findings = evaluate(pack, "r1", metrics, {"leakage"})
    path.unlink()  # the file is gone when the report is made
    assert _unread_attributes(findings, metrics) == {"attributes": ["geschlecht"], "unchecked": []}
    # Findings stored before they recorded what they read: the shipped pack is read again, a file cannot be.
    old = findings.assign(location=findings["location"].map(
        lambda s: json.dumps({k: v for k, v in json.loads(s).items() if k != "reads"})))
    assert _unread_attributes(old, metrics) == {"attributes": ["geschlecht", "sex"], "unchecked": ["my-policy"]}
    shipped = evaluate(load_pack("baseline"), "r1", metrics, {"leakage"})
    shipped = shipped.assign(location=shipped["location"].map(
        lambda s: json.dumps({k: v for k, v in json.loads(s).items() if k != "reads"})))
    assert _unread_attributes(shipped, metrics) == {"attributes": ["geschlecht"], "unchecked": []}


def test_a_query_inversion_finding_states_the_queries_it_rests_on():
    """Review F2: the finding's sentence for the query-only attacker gave no query count, so a result within 41 queries
    read as irreversibility against the score interface. It now says within how many queries per victim."""
    rows = [finding("Q1", metric="sar_type1", attribute="", setting="query;target;fmr=0.001", value=0.3, ci_low=0.2,
                    ci_high=0.45)]
    spent = metrics([{"probe": "inversion", "metric": "queries_per_victim", "condition": "clean", "setting": "query",
                      "value": 41.0, "ci_low": 41.0, "ci_high": 41.0}])
    meaning = narrative.verdict(pd.DataFrame(rows), spent, [], [], [])["problems"][0]["meaning"]
    assert "accepts as the person within 41 queries per victim (a budget-bound attack: more queries may succeed " \
           "more often): 30.0% of reconstructions" in meaning


def test_the_query_attack_is_listed_among_the_attacks_stopped_by_their_budget():
    """Review F6: the query attack always stops at its budget, yet 'Did the attacks run to convergence?' left it out
    while saying that each attack runs until its own objective stops improving."""
    from audit.report.render import _inversion_convergence

    rec = {"stopped_by": "plateau", "steps": 9, "cap": 12, "min_delta": 0.005, "patience": 5}
    lines = _inversion_convergence({"convergence": rec}, {"budget": 200, "queries_per_victim": 181.0})["convergence"]
    assert ("The query-only attack has no stopping rule of its own: it spent 181 queries per victim and stopped "
            "because its budget of 200 ran out, so a larger budget may strengthen it.") in lines


def test_inversion_from_several_masks_is_told_once_per_attack_on_the_worst_mask():
    """Since 0.5.0 every mask's templates are attacked (the masked-template rules take the worst): page one tells
    each attack once, on the mask the audited model accepted most reconstructions from, and says it is the worst."""
    rows = metrics([{"probe": "inversion", "metric": "sar_type1", "condition": c, "setting": "black-box;target;fmr=0.001",
                     "value": v, "ci_low": v - 0.1, "ci_high": v + 0.1}
                    for c, v in (("clean", 0.6), ("mask:surgical", 0.2), ("mask:n95", 0.45), ("mask:cloth", 0.3))])
    said = narrative.inversion_verdicts(rows)
    assert len(said) == 2 and "from templates of clean faces" in said[0]
    assert "(mask:n95) (the worst of the 3 masks for this attack), faces accepted" in said[1] and "45.0%" in said[1]


def test_an_attribute_stored_without_a_number_is_said_not_measured_not_chance_and_does_not_stop_the_report():
    """A review of the report: an attribute the leakage probe stores without a number (too few persons labelled with
    it, or one value only) crashed the whole report when an occlusion had run (idxmin over no number), and on clean
    faces alone read "not shown to be readable ... leakage n/a" and was drawn as a bar at 0, which reads chance."""
    from audit.report import plots

    rows = [dict(probe="leakage", condition=cond, metric="normalised_gain", attribute=attr, setting=setting,
                 value=float("nan"), ci_low=float("nan"), ci_high=float("nan"))
            for attr in ("skin_tone", "control") for cond in ("clean", "mask:surgical")
            for setting in (["train=same"] if cond == "clean" else ["train=clean", "train=same"])]
    rows += [dict(probe="leakage", condition=cond, metric="normalised_gain", attribute="sex", setting="train=same",
                  value=v, ci_low=v - 0.1, ci_high=v + 0.1) for cond, v in (("clean", 0.5), ("mask:surgical", 0.3))]
    tone, control, sex = narrative.leakage_verdicts(metrics(rows))
    assert tone.startswith("skin tone: not measured (too few persons labelled with it") and "chance" not in tone
    assert ": not measured (too few persons labelled" in control and "chance" not in control, control
    assert sex.startswith("sex: readable from clean-face outputs")
    svg = plots.leakage_bars(metrics(rows))
    assert svg.count("not measured") == 6  # skin tone's and the control's three stored rows, one label each


def test_a_judged_number_is_never_rounded_onto_the_other_side_of_its_limit():
    """A review of the report: "judged: 0.050" stood beside a warn at "> 0.05" (0.0504), "0.950" beside a warn at
    "< 0.95" (0.9496), and page one said a group was "falsely matched 2.0 times as often" for a warn at "> 2" (2.04).
    A judged number keeps the decimals it takes to compare with the rule's limits as it does."""
    from audit.report.render import environment as env

    assert narrative.fmt_against(2.04, ("> 2", "> 5"), 1) == "2.04"
    assert narrative.fmt_against(0.0504, ("> 0.05", "> 0.15"), 3) == "0.0504"
    assert narrative.fmt_against(0.9496, ("< 0.95", "< 0.90"), 3) == "0.9496"
    assert narrative.fmt_against(0.62, ("> 0.05", "> 0.15"), 3) == "0.620"  # far from a limit: as before
    partial = env().get_template("partials/_measured.html.j2")
    row = {"value": 0.12, "ci_low": 0.0504, "ci_high": 0.2, "observed": 0.0504, "judged": "ci_low",
           "warn_if": "> 0.05", "fail_if": "> 0.15"}
    assert "judged: 0.0504 (lower end)" in partial.render(f=row)
    ratio = {"value": 2.04, "ci_low": 1.2, "ci_high": 3.0, "observed": 2.04, "judged": "value", "warn_if": "> 2",
             "fail_if": "> 5"}
    assert partial.render(f=dict(ratio, value=2.0004, observed=2.0004)).startswith("2.0004<br>")
    f = finding("DEMO-FMR-PARITY", metric="fmr_max_min", attribute="sex", setting="fmr=0.001", value=2.04,
                ci_low=1.2, ci_high=3.0)
    f.update(judged="value", warn_if="> 2", fail_if="> 5")
    f["location"] = json.loads(f["location"])  # as the verdict reads it
    assert "falsely matched 2.04 times as often" in narrative._meaning_of(f), narrative._meaning_of(f)
