"""Plain-language sentences built from stored metrics (no numbers are invented here)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from audit import conditions
from audit.errors import ConfigError
from audit.metrics.settings import is_unsupported, rate_of
from audit.rules.engine import holds, nonmembers_needed


def fmt(v: float | None, digits: int = 2) -> str:
    if v is None or pd.isna(v):
        return "n/a"
    if np.isinf(v):  # a disparity ratio where one group has no errors and another has some
        return "∞" if v > 0 else "−∞"
    return f"{v:.{digits}f}"


def fmt_against(v: float | None, limits, digits: int = 2) -> str:
    """``v`` with ``digits`` decimals, or more where fewer would round it onto the other side of one of ``limits``
    (comparators such as "> 2"): a ratio of 2.04 that warns at "> 2" reads 2.04, not 2.0 (a review of the report)."""
    if v is None or pd.isna(v) or np.isinf(v):
        return fmt(v, digits)
    limits = [lim for lim in limits if lim]
    for d in range(digits, digits + 6):
        if all(holds(lim, round(float(v), d)) == holds(lim, float(v)) for lim in limits):
            return f"{v:.{d}f}"
    return f"{v:.{digits + 6}g}"


def ci(row) -> str:
    return f"{fmt(row['value'])} (95% CI {fmt(row['ci_low'])} to {fmt(row['ci_high'])})"


NEGATIVE_CONTROL = "control"
"""The synthetic set's random label (drawn at random for each person, in no image): a negative control, not a
demographic; every probe should find nothing on it."""
ATTRIBUTE_WORDS = {"skin_tone": "skin tone", NEGATIVE_CONTROL: "negative control (a random label)"}


def attr_words(attr: str) -> str:
    """An attribute as a sentence says it: 'skin tone', not 'skin_tone'."""
    return ATTRIBUTE_WORDS.get(attr, str(attr).replace("_", " "))


def cond_words(cond: str) -> str:
    """A condition as a sentence says it, with the name the tables use after it: 'a cloth mask (mask:cloth)'. A name
    the condition parser does not know (a cloak, a condition from a newer version) is left as it is."""
    try:
        parts = conditions.parse(str(cond))
    except ConfigError:
        return str(cond)
    words = []
    for part in parts:
        if part.kind == "mask":
            mask = part.arg.removesuffix(conditions.TEMPLATE)
            words.append(("an N95" if mask == "n95" else f"a {mask}") + " mask"
                         + (" drawn the same for everyone" if part.arg != mask else ""))
        elif part.kind == "sunglasses":
            words.append("sunglasses")
        elif part.kind == "patch":
            words.append(f"{100 * float(part.arg):.3g}% of the face greyed out in patches")
        else:  # freqmix
            words.append("frequencies mixed with other faces")
    said = " and ".join(words)
    return said if said in (cond, "") else f"{said} ({cond})"


NOT_MEASURED = ("not measured (too few persons labelled with it, or one value only: the probe's notes say which), so "
                "not shown either way.")


def leakage_verdicts(metrics: pd.DataFrame, same_landmarks: bool = False) -> list[str]:
    """One sentence per attribute: is it readable on clean faces, and does the worst occlusion hide it?
    ``same_landmarks``: every face has the same landmarks, so masks were drawn identically for everyone."""
    m = metrics[metrics["probe"] == "leakage"]
    out = []
    for attr in dict.fromkeys(m["attribute"]):
        a = m[m["attribute"] == attr]
        metric = "mae_gain" if (a["metric"] == "mae_gain").any() else "normalised_gain"
        clean = a[(a["metric"] == metric) & (a["condition"] == "clean") & (a["setting"] == "train=same")]
        if clean.empty:
            continue
        a = a[a["value"].notna()]  # stored without a number: too few labelled persons, or one class only
        if attr == NEGATIVE_CONTROL:
            rows = a[(a["metric"] == metric) & a["setting"].isin(["train=same", "train=clean"])]
            out.append(_control_sentence(rows) if len(rows) else f"{attr_words(attr)}: {NOT_MEASURED}")
            continue
        if pd.isna(clean.iloc[0]["value"]):
            out.append(f"{attr_words(attr)}: {NOT_MEASURED}")
            continue
        c = clean.iloc[0]
        readable = c["ci_low"] > 0
        sentence = (f"{attr_words(attr)}: {'readable' if readable else 'not shown to be readable'} from clean-face outputs, "
                    f"leakage {ci(c)}.")
        masked = a[(a["metric"] == metric) & (a["condition"] != "clean") & (a["setting"] == "train=same")]
        if not masked.empty:
            worst = masked.loc[masked["value"].idxmin()]
            if worst["ci_low"] > 0:
                sentence += (f" Occlusion does not protect it: even under {cond_words(worst['condition'])} an attacker trained on "
                             f"such faces reaches {ci(worst)}.")
            else:
                sentence += (f" Under {cond_words(worst['condition'])} leakage is not distinguishable from chance "
                             f"({ci(worst)}).")
                still = masked[masked["ci_low"] > 0]
                if len(still):  # the most protective occlusion is not all of them
                    top = still.loc[still["value"].idxmax()]
                    sentence += (f" It stays readable under {len(still)} of the other {len(masked) - 1} occlusions "
                                 f"(up to {ci(top)} under {cond_words(top['condition'])}).")
        effect = a[(a["metric"] == "mask_effect") & (a["setting"] == "train=clean")]
        if not effect.empty:
            e = effect.loc[effect["value"].idxmin()]
            if e["ci_high"] < 0:
                sentence += (f" An attacker trained only on clean faces loses {fmt(-e['value'])} under "
                             f"{cond_words(e['condition'])}, but retraining on occluded faces recovers it.") \
                    if not masked.empty and masked["ci_low"].min() > 0 else ""
        sentence += _raised(a, attr, same_landmarks)
        out.append(sentence)
    return out


def _control_sentence(rows: pd.DataFrame) -> str:
    """The negative control over every condition and attacker setting, not its most reassuring one: how many
    estimates lie above chance with intervals that exclude 0, and the largest."""
    what = attr_words(NEGATIVE_CONTROL)
    top = rows.loc[rows["value"].idxmax()]
    where = f"{cond_words(top['condition'])}, attacker trained {'on clean faces' if top['setting'] == 'train=clean' else 'on such faces'}"
    above = rows[rows["ci_low"] > 0]
    if above.empty:
        return (f"{what}: at chance everywhere it was measured (each of its {len(rows)} estimates' 95% intervals holds 0; "
                f"the largest {ci(top)}, {where}).")
    return (f"{what}: {len(above)} of its {len(rows)} estimates lie above chance with 95% intervals that exclude 0 "
            f"(the largest {ci(top)}, {where}). A random label should be readable nowhere: leakage figures of about "
            "this size elsewhere in this report are not evidence on their own.")


def _raised(a: pd.DataFrame, attr: str, same_landmarks: bool = False) -> str:
    """Say so plainly when an occlusion *raises* leakage, and what separates the two explanations (none is needed
    when every face has the same landmarks: the occlusion was drawn identically for everyone)."""
    eff = a[(a["metric"] == "mask_effect") & (a["setting"] == "train=same")]
    up = eff[(eff["ci_low"] > 0) & ~eff["condition"].str.contains("@template", regex=False)]
    if up.empty:
        return ""
    e = up.loc[up["value"].idxmax()]
    cond = str(e["condition"])
    thing = "mask" if cond.startswith("mask:") else "occlusion"
    text = (f" Under {cond_words(cond)} {attr_words(attr)} is MORE readable than on clean faces (+{fmt(e['value'])}, 95% CI "
            f"{fmt(e['ci_low'])} to {fmt(e['ci_high'])}): the {thing} does not hide it, it makes it plainer.")
    if same_landmarks:
        return text + (f" Every face here has the same landmarks (aligned beforehand), so the {thing} was drawn "
                       "identically for everyone: the part of the face left visible carries it.")
    text += (f" Either the part of the face left visible carries it, or the {thing}'s outline does, since it is "
             "drawn from each person's own landmarks and so follows the shape of their face.")
    if cond.startswith("mask:") and "+" not in cond:
        tmpl = eff[eff["condition"] == f"{cond}@template"]
        if tmpl.empty:
            text += (f" Run the condition {cond}@template (the same mask drawn from the mean landmarks, identical "
                     "for everyone) beside it to tell the two apart.")
        else:
            t = tmpl.iloc[0]
            verdict = ("the same mask drawn identically for everyone raises it too, so the visible face carries it"
                       if t["ci_low"] > 0 else "the same mask drawn identically for everyone does not, so the mask's "
                       "shape carries it")
            text += (f" With {cond_words(cond + '@template')} the change is {fmt(t['value'])} ({fmt(t['ci_low'])} to "
                     f"{fmt(t['ci_high'])}): {verdict}.")
    return text


def identity_verdicts(metrics: pd.DataFrame, findings: pd.DataFrame | None = None) -> list[str]:
    """Rejection under occlusion, then the FDR of each attribute beside its FMR ratio (an FDR near 1 is no proof
    of parity at a low FMR), saying when a disparity rule in ``findings`` fails or warns on that attribute."""
    m = metrics[metrics["probe"] == "identity"]
    out = []
    fnmr = m[(m["metric"] == "fnmr") & (m["setting"] == "fmr=0.001")]
    clean = fnmr[fnmr["condition"] == "clean"]
    if not clean.empty:
        c = clean.iloc[0]
        out.append(f"On clean faces the system rejects {fmt(100 * c['value'], 1)}% of genuine users (95% CI "
                   f"{fmt(100 * c['ci_low'], 1)} to {fmt(100 * c['ci_high'], 1)}%) at the threshold set for one false "
                   "match in a thousand impostor comparisons.")
        for _, r in fnmr[fnmr["condition"] != "clean"].iterrows():
            out.append(f"With {cond_words(r['condition'])}, it rejects {fmt(100 * r['value'], 1)}% "
                       f"(95% CI {fmt(100 * r['ci_low'], 1)} to {fmt(100 * r['ci_high'], 1)}%).")
    fdr = m[(m["metric"] == "fdr") & (m["condition"] == "clean")]
    if not fdr.empty:
        setting = str(fdr.iloc[0]["setting"])
        per = 1 / (rate_of(setting, "fmr") or 1e-3)
        thin = (" Too few impostor comparisons back that rate (rule of 30): these differentials are indicative only, "
                "and no rule passes on them." if is_unsupported(setting) else "")
        out.append("Fairness discrepancy rate (FDR) = 1 − (0.5 × the largest gap between groups' false match rates "
                   "+ 0.5 × the largest gap between their false non-match rates), gaps as differences of rates. At a "
                   f"threshold set for about one false match in {per:,.0f}, FMR gaps are small fractions even when "
                   "one group is falsely matched many times as often as another, so an FDR near 1 does not show "
                   f"parity: the ratio of group false match rates is reported and judged separately.{thin}")
    for _, r in fdr.iterrows():
        attr = r["attribute"]
        text = f"{_groups(attr)}: FDR {ci(r)}"
        at = (m["condition"] == r["condition"]) & (m["attribute"] == attr) & (m["setting"] == r["setting"])
        for metric, rate, what in (("fmr_max_min", "group_fmr", "falsely matched"),
                                   ("fnmr_max_min", "group_fnmr", "falsely rejected")):
            ratio = m[at & (m["metric"] == metric)]
            if ratio.empty:
                continue
            x = ratio.iloc[0]
            if pd.isna(x["value"]):
                text += (f"; the ratio of group {'false match' if rate == 'group_fmr' else 'false non-match'} rates "
                         "is not measured (a group has no comparisons of its own)")
                continue
            high = _upper(x["ci_high"])
            extremes = _most_and_least(m[at & (m["metric"] == rate)])
            who = ""
            if extremes:
                worst, best = extremes
                digits = 2 if rate == "group_fmr" else 1
                who = (f": {worst['group']} {_pct(worst['value'], digits)} (95% CI {_pct(worst['ci_low'], digits)}–"
                       f"{_pct(worst['ci_high'], digits)}), {best['group']} {_pct(best['value'], digits)}")
            if np.isinf(x["value"]):
                text += f"; one group is never {what} while another is (95% CI {fmt(x['ci_low'], 1)} to {high}){who}"
            else:
                text += (f"; the most {what} group's rate is {fmt(x['value'], 1)} times the least's (95% CI "
                         f"{fmt(x['ci_low'], 1)} to {high}){who}")
        rules = _disparity_rules(findings, attr, r["condition"])
        if rules:
            text += f". Disparity rules on it: {', '.join(rules)} (see Findings)"
        out.append(text + ".")
    return out


def _most_and_least(groups: pd.DataFrame) -> tuple[pd.Series, pd.Series] | None:
    """The most and the least affected of ``groups`` (one group-rate row each); a group not measured (no value) is
    neither; None when fewer than two were measured or all have the same rate."""
    g = groups.dropna(subset=["value"])
    if len(g) < 2 or g["value"].max() == g["value"].min():
        return None
    return g.loc[g["value"].idxmax()], g.loc[g["value"].idxmin()]


def _upper(hi) -> str:
    """A ratio's upper interval end in words: 'no upper bound' where it is infinite, 'not computed' where missing."""
    if hi is None or pd.isna(hi):
        return "not computed"
    return "no upper bound" if np.isinf(hi) else fmt(hi, 1)


def _disparity_rules(findings: pd.DataFrame | None, attr: str, condition: str) -> list[str]:
    """Each rule on a group-rate ratio or the FDR that failed or warned on ``attr``, as 'RULE-ID fails' (failures
    first), with ' under occlusion' when it did so only under conditions other than ``condition``."""
    if findings is None or findings.empty:
        return []
    out = []  # (rank, words)
    for f in _records(findings[findings["status"].isin(STATUS_RANK)]):
        if not (f.get("metric") or "").startswith(("fmr_max", "fnmr_max", "fdr")):
            continue
        loc = f["location"]
        # a rule aggregated over attributes names its worst row; the others that reach a limit are its breaches
        hit = ([(f["status"], loc.get("condition"))] if loc.get("attribute") == attr else []) + \
            [(b["level"], b.get("condition")) for b in loc.get("breaches", []) if b.get("attribute") == attr]
        if not hit:
            continue
        level = "fail" if any(lv == "fail" for lv, _ in hit) else "warn"
        where = "" if any(c == condition for _, c in hit) else " under occlusion"
        out.append((STATUS_RANK[level], f"{f['rule_id']} {'fails' if level == 'fail' else 'warns'}{where}"))
    return [words for _, words in sorted(dict.fromkeys(out))]


def _groups(attr: str) -> str:
    """The groups of ``attr`` in words, the negative control named as such."""
    if attr == NEGATIVE_CONTROL:
        return "Negative control (a random label in no image, not a demographic group; expected at parity)"
    return f"Across {attr_words(attr)} groups"


ATTACKER = {  # inversion attack -> who the attacker is, in plain words
    "white-box": "Someone holding the model file",
    "query": "Someone holding a stolen template and able to query the matcher",
    "black-box": "Someone holding a stolen template (with a decoder trained beforehand)",
    "random-face": "Control: someone submitting another person's face"}


def inversion_verdicts(metrics: pd.DataFrame, queries: float | None = None) -> list[str]:
    """One sentence per attack (threat model) and condition at FMR 1e-3, naming every judge's rate (the audited model
    first, then an independent one), of several masks the worst only; ``queries``: what the query attacker spent per
    victim."""
    m = metrics[(metrics["probe"] == "inversion") & (metrics["metric"] == "sar_type1")]
    m = m[[rate_of(s, "fmr") == 1e-3 for s in m["setting"]]]
    out = []
    groups: dict[tuple[str, str], list] = {}
    for _, r in m.iterrows():
        groups.setdefault((r["setting"].split(";")[0], r["condition"]), []).append(r)
    # Of several masks, one sentence per attack on the worst (by the audited model's rate, ranked as the masked rules
    # rank it: the lower end of the interval, then the value): the others are in the table, and a sentence each would
    # lengthen the printed report.
    masks: dict[str, list[str]] = {}
    for attack, condition in groups:
        if condition != "clean":
            masks.setdefault(attack, []).append(condition)

    def target_rate(key) -> tuple[float, float]:  # as the masked rules rank them: the lower end, then the value
        rows = [r for r in groups[key] if r["setting"].split(";")[1] == "target" and pd.notna(r["value"])]
        return (max([float(r["ci_low"]) for r in rows if pd.notna(r["ci_low"])] or [-1.0]),
                max([float(r["value"]) for r in rows] or [-1.0]))

    worst = {a: max(conds, key=lambda c: target_rate((a, c))) for a, conds in masks.items()}
    for (attack, condition), rows in groups.items():
        if condition != "clean" and condition != worst[attack]:
            continue
        who = ATTACKER.get(attack, attack.capitalize())
        source = "clean faces" if condition == "clean" else f"faces with {cond_words(condition)}"
        if condition != "clean" and len(masks[attack]) > 1 and not all(pd.isna(r["value"]) for r in rows):
            source += f" (the worst of the {len(masks[attack])} masks for this attack)"
        if all(pd.isna(r["value"]) for r in rows):  # an attack that was not run (white-box without a torch backend;
            # those built on a decoder trained without a withdrawn --attacker-model)
            out.append(f"{who}: not tried on templates of {source} (the attack could not run, or was held back; the "
                       "run's notes say why), so no rule that pools every threat model passes.")
            continue
        cost = f" with {fmt(queries, 0)} queries per person" if attack == "query" and queries else ""
        parts = []
        for r in sorted(rows, key=lambda r: r["setting"].split(";")[1] != "target"):
            if pd.isna(r["value"]):
                continue
            judge = r["setting"].split(";")[1]
            chance = "against about 0.1% by chance"
            if attack == "query" and judge == "target":  # it keeps the best of its submissions by the target's score:
                # chance is the best of that many tries (an independent judge sees the one image kept: about 0.1%)
                chance = ("against up to about "
                          f"{fmt(100 * (1 - (1 - 1e-3) ** queries), 1)}% for {fmt(queries, 0)} unrelated faces "
                          "submitted (the best of that many tries, each accepted about 0.1% of the time)" if queries
                          else "against more than 0.1% by chance (it keeps the best of many tries)")
            parts.append(f"{'the audited model' if judge == 'target' else 'an independent face-recognition model'} "
                         f"in {fmt(100 * r['value'], 1)}% of cases (95% CI {fmt(100 * r['ci_low'], 1)} to "
                         f"{fmt(100 * r['ci_high'], 1)}%, {chance})")
        thin = (" Too few victims back a false match rate of 1 in 1,000 (rule of 30), so no rule passes on these "
                "figures." if any(is_unsupported(r["setting"]) for r in rows) else "")
        out.append(f"{who} rebuilds, from templates of {source}{cost}, faces accepted as the person by "
                   f"{' and by '.join(parts)}.{thin}")
    return out


def membership_verdicts(metrics: pd.DataFrame) -> list[str]:
    """Plain sentences on the membership probe's strongest attack: the true-positive rate at each false-positive
    target (saying when too few non-members back it) and the AUC."""
    m = metrics[metrics["probe"] == "membership"]
    out = []
    auc = m[(m["metric"] == "membership_auc") & (m["setting"] == "strongest")]
    tpr = m[(m["metric"] == "membership_tpr_at_fpr") & m["setting"].str.startswith("strongest;")]
    fprs = [rate_of(s, "fpr") for s in tpr["setting"]]
    fpr_rows = m[(m["metric"] == "membership_fpr")].set_index("setting")
    for fpr, (_, r) in sorted(zip(fprs, tpr.iterrows()), key=lambda t: -t[0]):
        reached = fpr_rows.loc[r["setting"]] if r["setting"] in fpr_rows.index else None
        accused = ("" if reached is None else  # the rate the thresholds, chosen on other persons, actually reached
                   f" (it accused {fmt(100 * reached['value'], 1)}%, 95% CI {fmt(100 * reached['ci_low'], 1)} to "
                   f"{fmt(100 * reached['ci_high'], 1)}%)")
        chance = fpr if reached is None else float(reached["value"])
        if _beats_random(r["ci_low"], chance):
            text = (f"An attacker who has a person's photos can tell whether they were in the training data for "
                    f"{fmt(100 * r['value'], 1)}% of members (95% CI {fmt(100 * r['ci_low'], 1)} to "
                    f"{fmt(100 * r['ci_high'], 1)}%) while aiming to accuse {fmt(100 * fpr, 1)}% of non-members"
                    f"{accused}. Accusing persons at random would flag {fmt(100 * chance, 1)}% of members.")
        else:  # the members flagged are within what random accusations at the reached rate flag: no disclosure shown
            text = (f"An attacker who has a person's photos is not shown to do better than accusing persons at random: "
                    f"aiming to accuse {fmt(100 * fpr, 1)}% of non-members{accused}, it flagged "
                    f"{fmt(100 * r['value'], 1)}% of members (95% CI {fmt(100 * r['ci_low'], 1)} to "
                    f"{fmt(100 * r['ci_high'], 1)}%), and random accusations flag {fmt(100 * chance, 1)}% of members "
                    "(as many as of non-members).")
        if is_unsupported(r["setting"]):
            need = nonmembers_needed("membership", r["setting"], m)
            more = "more" if need is None else f"{need:,}"
            text += (f" Too few non-member persons back a {fmt(100 * fpr, 1)}% false-positive rate: it needs {more} "
                     "more non-member persons, so this figure is indicative only.")
        out.append(text)
    if len(auc):
        a = auc.iloc[0]
        told = "better than chance" if a["ci_low"] > 0.5 else "not clearly better than chance"
        out.append(f"Ranking persons by the attack's score puts a member above a non-member with probability "
                   f"{fmt(a['value'], 2)} (95% CI {fmt(a['ci_low'], 2)} to {fmt(a['ci_high'], 2)}; 0.5 = chance): "
                   f"membership is {told}.")
    return out


def cloak_verdicts(m: pd.DataFrame) -> list[str]:
    """m: psr_at_1 rows with 'cloak' and 'purifier' columns."""
    out = []
    for (cloak, setting), g in m.groupby(["cloak", "setting"], sort=True):
        if cloak == "clean" or cloak.endswith("@0"):
            continue
        base = g[(g["purifier"] == "none") & g["value"].notna()]  # no number: not made (the notes say why)
        if base.empty:
            continue
        b = base.iloc[0]
        purified = g[(g["purifier"] != "none") & g["value"].notna()]
        worst = purified.loc[purified["value"].idxmin()] if not purified.empty else None
        who = ("made on the audited model itself" if setting == "white-box" else "made on whichever public model "
               "served best" if setting == "transfer:any" else f"made on {setting.split(':', 1)[-1]}")
        if cloak.startswith("cloak:best@"):
            cloak = f"The best cloak at {cloak.split('@', 1)[1]} of 255, chosen on other persons' results"
        text = (f"{cloak} ({who}) hides the person in {fmt(100 * b['value'], 0)}% of cloaked photos (95% CI "
                f"{fmt(100 * b['ci_low'], 0)} to {fmt(100 * b['ci_high'], 0)}%)")
        if worst is not None:
            # "only" where the purifier clearly removes protection (the intervals do not overlap)
            lower = worst["ci_high"] < b["ci_low"]
            text += (f"; after {worst['purifier']}{' only' if lower else ''} {fmt(100 * worst['value'], 0)}% (95% CI "
                     f"{fmt(100 * worst['ci_low'], 0)} to {fmt(100 * worst['ci_high'], 0)}%)")
        out.append(text + ".")
    return out


TOP_PROBLEMS = 5
"""Distinct problems page one lists; the rest are counted there and listed in the Findings table."""
SEVERITY = {"critical": 0, "high": 1, "medium": 2, "low": 3}
STATUS_RANK = {"fail": 0, "warn": 1}


def _pct(x, digits: int = 0) -> str:
    return "n/a" if x is None or pd.isna(x) else f"{100 * x:.{digits}f}%"


JUDGES = {"target": "the audited model", "evaluator": "an independent face-recognition model (the evaluator)"}
"""Who accepted a reconstruction, by the inversion setting's judge."""


def flags_on_uncertainty(f: dict) -> bool:
    """Whether a rule judges the end of the interval *most* favourable to finding a problem: the lower end against a
    ``<`` limit (FDR, TAR: low is the problem) or the upper end against a ``>`` one. Such a rule asks the data to
    show the system is fair or accurate enough, so it warns or fails on a wide interval as well as on a problem."""
    limit = f.get("fail_if") or f.get("warn_if") or ""
    return (f.get("judged") == "ci_low" and limit.startswith("<")) or \
        (f.get("judged") == "ci_high" and limit.startswith(">"))


def _meaning(f: dict, metrics: pd.DataFrame | None = None) -> str:
    """:func:`_meaning_of`, saying so when only the judged end of the interval, not the measured value, reaches the
    rule's limit (a fairness or accuracy rule that flags what the data cannot rule out)."""
    text = _meaning_of(f, metrics)
    # the limit behind the status: a fail that rests on the interval alone is said so even when the value warns
    v, limit = (f["location"] or {}).get("value"), f.get("fail_if" if f.get("status") == "fail" else "warn_if")
    if f.get("status") in ("warn", "fail") and flags_on_uncertainty(f) and v is not None and limit \
            and not holds(limit, v):
        end = "lower" if f.get("judged") == "ci_low" else "upper"
        text += (f" The measured value itself is within the rule's limit ({limit}); the {end} end of its 95% "
                 "interval is not, so the data cannot rule the problem out.")
    return text


def _meaning_of(f: dict, metrics: pd.DataFrame | None = None) -> str:
    """What a finding's number means for people, in one sentence built from the number it was judged on
    (``metrics``: the run's, for the audited model's own figure beside an evaluator's)."""
    loc = f["location"]
    v, lo, hi = loc.get("value"), loc.get("ci_low"), loc.get("ci_high")
    metric, attr, cond, setting = f.get("metric") or "", loc.get("attribute", ""), loc.get("condition", ""), \
        loc.get("setting", "")
    under = f" with {cond_words(cond)}" if cond and cond != "clean" else ""
    if v is None:
        return f"observed {fmt(f['observed'])}."
    if metric.startswith("sar_type"):
        attack, judge = (setting.split(";") + ["", ""])[:2]
        who = ("the model file" if attack == "white-box" else
               "stolen templates and access to the matcher" if attack == "query" else
               "stolen templates and the model's outputs")
        source = f", from templates of faces with {cond_words(cond)}," if cond and cond != "clean" else ""
        unit = ("reconstructions" if metric == "sar_type1" else
                "comparisons of a reconstruction with the person's other photos")
        spent = None if metrics is None or attack != "query" else metrics[
            (metrics["probe"] == "inversion") & (metrics["metric"] == "queries_per_victim")
            & (metrics["setting"] == "query")]["value"]
        within = (f" within {fmt(float(spent.iloc[0]), 0)} queries per victim (a budget-bound attack: more queries "
                  "may succeed more often)" if spent is not None and len(spent) else "")
        text = (f"someone holding {who} can rebuild{source} faces that {JUDGES.get(judge, 'the system')} accepts as "
                f"the person{within}: {_pct(v, 1)} of {unit} (95% CI {_pct(lo, 1)}–{_pct(hi, 1)})")
        if judge != "target" and metrics is not None:  # what the audited system itself accepts, beside it
            own = metrics[(metrics["probe"] == "inversion") & (metrics["metric"] == metric)
                          & (metrics["condition"] == cond)
                          & (metrics["setting"] == ";".join([attack, "target", *setting.split(";")[2:]]))]
            if not own.empty:
                o = own.iloc[0]
                text += (f"; the audited model itself accepts {_pct(o['value'], 1)} (95% CI "
                         f"{_pct(o['ci_low'], 1)}–{_pct(o['ci_high'], 1)})")
        return text + "."
    if metric == "normalised_gain":
        return (f"{attr_words(attr)} can be read from the model's templates{under}: the attacker gets {fmt(v)} of the way from "
                f"guessing to certainty (95% CI {fmt(lo)} to {fmt(hi)}).")
    if metric == "mae_gain":
        return f"age can be estimated from the templates{under}, removing {_pct(v)} of the uncertainty."
    if metric.startswith("psr_"):
        return (f"a person who cloaks their photos is still recognised in {_pct(1 - hi)}–{_pct(1 - lo)} of attempts"
                f"{' (' + cond + ')' if cond else ''}.")
    if metric.endswith(("_max_min", "_max_geomean")):
        what = "falsely rejected" if metric.startswith("fnmr") else "falsely matched"
        if np.isinf(v):
            return f"some {attr_words(attr)} groups are never {what} while others are{under}."
        shown = fmt_against(v, (f.get("warn_if"), f.get("fail_if")), 1) if f.get("judged") == "value" else fmt(v, 1)
        text = (f"one {attr_words(attr)} group is {what} {shown} times as often as "
                f"{'another' if 'min' in metric else 'average'}{under} (95% CI {fmt(lo, 1)} to {_upper(hi)})")
        extremes = None if metrics is None or "group" not in metrics.columns else _most_and_least(
            metrics[(metrics["metric"] == "group_" + metric.split("_")[0]) & (metrics["attribute"] == attr)
                    & (metrics["condition"] == cond) & (metrics["setting"] == setting)])
        if extremes:  # which groups, with their rates
            worst, best = extremes
            d = 2 if metric.startswith("fmr") else 1
            text += f": {worst['group']} {_pct(worst['value'], d)}, {best['group']} {_pct(best['value'], d)}"
        return text + "."
    if metric == "fdr":
        return (f"the fairness discrepancy rate between {attr_words(attr)} groups is {fmt(v)} (95% CI {fmt(lo)} to "
                f"{fmt(hi)}; 1 = equal error rates){under}.")
    if metric == "eer":
        return (f"the equal error rate is {_pct(v)} (95% CI {_pct(lo)}–{_pct(hi)}): at the threshold where false "
                f"matches and false rejections are equally common, that share of attempts goes wrong{under}.")
    if metric == "tar_at_fmr":
        return f"the system recognises {_pct(v)} of genuine users{under} (95% CI {_pct(lo)}–{_pct(hi)})."
    if metric == "fnmr":
        return f"the system turns away {_pct(v)} of genuine users{under} (95% CI {_pct(lo)}–{_pct(hi)})."
    if metric.startswith("membership_") and (text := _membership_meaning(metric, setting, v, lo, hi, metrics)):
        return text
    return f"the measured {metric} is {fmt(v)} (95% CI {fmt(lo)} to {fmt(hi)}){under}."


def _beats_random(tpr_low: float | None, chance: float) -> bool:
    """Whether members are flagged clearly more often than random accusations would flag them: the TPR's lower end
    above the false-positive rate the thresholds reached (random accusations flag members and non-members alike)."""
    return tpr_low is not None and not pd.isna(tpr_low) and float(tpr_low) > chance


def _membership_meaning(metric: str, setting: str, v: float, lo: float | None, hi: float | None,
                        metrics: pd.DataFrame | None = None) -> str | None:
    """A membership finding in words: who can tell what about the persons in the training data (``metrics``: the
    run's, for the false-positive rate a threshold actually reached on held-out non-members); None for a membership
    metric it has no words for."""
    who = "someone holding a person's photos and the model's outputs"
    if metric == "membership_tpr_at_fpr":
        fpr = rate_of(setting, "fpr")
        reached = None if metrics is None else metrics[(metrics["metric"] == "membership_fpr")
                                                       & (metrics["setting"] == setting)]
        reached = float(reached.iloc[0]["value"]) if reached is not None and len(reached) else None
        chance = reached if reached is not None else fpr
        if chance is not None and not _beats_random(lo, chance):
            text = (f"{who} is not shown to do better than accusing persons at random: {_pct(v, 1)} of those in the "
                    f"training data are flagged (95% CI {_pct(lo, 1)}–{_pct(hi, 1)})"
                    + (f" at a threshold set to wrongly accuse {_pct(fpr, 1)} of persons who were not in it"
                       if fpr is not None else "")
                    + f", and random accusations flag {_pct(chance, 1)} of both")
        else:
            text = (f"{who} can tell that a person was in the training data for {_pct(v, 1)} of those who were (95% "
                    f"CI {_pct(lo, 1)}–{_pct(hi, 1)})")
            if fpr is not None:
                text += f" at a threshold set to wrongly accuse {_pct(fpr, 1)} of persons who were not in it"
        if is_unsupported(setting):
            text += (f"; too few non-member persons back that rate, so the figure is indicative only"
                     + (f" (the threshold accused {_pct(reached, 1)} of held-out non-members)"
                        if reached is not None else ""))
        return text + "."
    if metric == "membership_auc":
        told = "better than chance" if lo is not None and lo > 0.5 else "not clearly better than chance"
        return (f"{who} tells persons in the training data from others {told}: a member scores above a non-member "
                f"with probability {fmt(v)} (95% CI {fmt(lo)} to {fmt(hi)}; 0.50 = cannot tell).")
    if metric == "membership_balanced_accuracy":
        return (f"{who} sorts persons into in and out of the training data correctly {_pct(v, 1)} of the time, "
                f"averaged over the two (95% CI {_pct(lo, 1)}–{_pct(hi, 1)}; 50% = chance).")
    return None


def not_judged_reason(f: dict) -> str:
    """Why a rule was not judged, as a short reason shared by the rules it applies to."""
    msg, probe, loc = f.get("message") or "", f.get("probe") or "", f["location"] or {}
    where = json.dumps(loc.get("where", {}))
    if "probe did not run" in msg:
        return f"probe not run: {probe}"
    if msg.startswith("Too few persons"):
        return "too few people in a group to tell the threshold from parity"
    if msg.startswith("Too few non-member persons"):
        return "too few non-member persons for the false-positive target (membership)"
    if msg.startswith("Too few comparisons"):
        return "too few comparisons for the error-rate target"
    if msg.startswith("Too few queries") or "queries_per_victim" in loc:
        return "too few queries per victim for a pass (the query-only attacker's budget is under the quick preset's)"
    if "unjudged" in loc:
        return "a result without a 95% interval to judge (its resamples gave none)"
    if "undecided" in loc and "other_end" not in loc:
        return "a result without both ends of its 95% interval (nothing shows it stays within the limits)"
    if "other_end" in loc:  # runs judged before 0.3.0 record no level: their check was against the fail limit
        level = "a warning" if loc.get("undecided") == "warn" else "a fail"
        return f"too uncertain: the 95% interval reaches the limit, so it cannot tell a pass from {level}"
    if probe == "cloak" and "transfer" in where:
        return "cloak transfer not measured: no --surrogate model given"
    return "no matching result: the attribute, condition or operating point is not in this run"


def _records(findings: pd.DataFrame) -> list[dict]:
    """Finding rows as dicts, each ``location`` parsed."""
    rows = findings.to_dict("records")
    for r in rows:
        r["location"] = json.loads(r["location"]) if isinstance(r["location"], str) else (r["location"] or {})
    return rows


def not_judged(findings: pd.DataFrame) -> list[dict]:
    """The rules not judged, grouped by reason (:func:`not_judged_reason`), largest group first:
    ``[{reason, rules: ["pack · RULE-ID", ...]}]``."""
    groups: dict[str, list[str]] = {}
    for f in _records(findings[findings["status"] == "not_applicable"]):
        groups.setdefault(not_judged_reason(f), []).append(f"{f['pack']} · {f['rule_id']}")
    return [{"reason": k, "rules": v} for k, v in sorted(groups.items(), key=lambda kv: -len(kv[1]))]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _not_listed(more: dict, totals: dict) -> str:
    """The sentence after a cut list of problems: how many failed and warned rules it leaves out (``more``) of how
    many in all (``totals``), ending where they are (the template links the Findings table after it)."""
    return (f"Not listed here: {more['fail']} more failed {'rule' if more['fail'] == 1 else 'rules'} and "
            f"{_plural(more['warn'], 'warning')} ({_plural(totals['fail'], 'fail')} and "
            f"{_plural(totals['warn'], 'warning')} in all; rules that judge the same number are listed once above). "
            "Every one is in the")


def verdict(findings: pd.DataFrame, metrics: pd.DataFrame, probes_run: list[str], probes_known: list[str],
            unjudged: list[dict]) -> dict:
    """Page one: the most serious findings in plain words, the groups most affected, and what was not tested
    (``unjudged``: :func:`not_judged`, counted here with every rule whose probe did not run as one reason)."""
    bad = sorted(_records(findings[findings["status"].isin(STATUS_RANK)]),
                 key=lambda r: (STATUS_RANK[r["status"]], SEVERITY.get(r["severity"], 9), r["rule_id"]))
    seen, problems = set(), []
    sentences = [_meaning(r, metrics) for r in bad]
    for r, sentence in zip(bad, sentences):  # one sentence per distinct problem (packs often judge one number)
        if sentence in seen:
            continue
        if len(problems) == TOP_PROBLEMS:
            break
        seen.add(sentence)
        problems.append({"status": r["status"], "title": r["title"], "meaning": sentence[0].upper() + sentence[1:]})
    # the rules whose problem is not among those listed: counted by status, so a cut list never hides them
    rest = [r["status"] for r, sentence in zip(bad, sentences) if sentence not in seen]
    more = {"fail": rest.count("fail"), "warn": rest.count("warn")} if rest else None
    groups = []
    for metric, what, d in (("group_fnmr", "falsely rejected", 1), ("group_fmr", "falsely matched", 2)):
        g = metrics[(metrics["metric"] == metric) & (metrics["condition"] == "clean")
                    & (metrics["attribute"] != NEGATIVE_CONTROL)]
        for attr, part in g.groupby("attribute", sort=True):
            # a group without an interval can be an end, and then the two cannot be told apart: no sentence
            extremes = _most_and_least(part[part["setting"] == part["setting"].iloc[0]])
            if not extremes:
                continue
            worst, best = extremes
            if worst["ci_low"] > best["ci_high"]:  # told apart: the worst group's interval clears the best one's
                groups.append(f"{attr_words(attr)}: group {worst['group']} is {what} most ({_pct(worst['value'], d)}, "
                              f"95% CI {_pct(worst['ci_low'], d)}–{_pct(worst['ci_high'], d)}), group {best['group']} "
                              f"least ({_pct(best['value'], d)}).")
    untested = [p for p in probes_known if p not in probes_run]
    counts: dict[str, int] = {}
    for g in unjudged:
        reason = "their probe did not run" if g["reason"].startswith("probe not run") else g["reason"]
        counts[reason] = counts.get(reason, 0) + len(g["rules"])
    totals = {"fail": sum(r["status"] == "fail" for r in bad), "warn": sum(r["status"] == "warn" for r in bad)}
    from audit.evidence.gate import no_result_for, undecided as undecided_levels

    doubt = undecided_levels(findings) if len(findings) else pd.Series([], dtype=object)
    undecided = sorted(({"title": r.title, "rule": f"{r.pack} · {r.rule_id}",
                         "level": "a failure" if level == "fail" else "a warning"}
                        for r, level in zip(findings.itertuples(), doubt) if isinstance(level, str)),
                       key=lambda u: (u["level"] != "a failure", u["rule"]))
    # a pass of a rule pooling attributes some of which the run has no result for covers the others only (a pass
    # of "parity across sex and skin-tone groups" on a dataset labelled by sex alone): said beside the verdict, not
    # only in the rule's message (a review of the verdicts)
    partial = [{"title": r["title"], "rule": f"{r['pack']} · {r['rule_id']}",
                "missing": ", ".join(attr_words(a) for a in missing)}
               for r in _records(findings) if r["status"] == "pass" and (missing := no_result_for(r["location"]))]
    return {"problems": problems, "undecided": undecided, "more": _not_listed(more, totals) if more else None,
            "partial": sorted(partial, key=lambda p: p["rule"]),
            "groups": groups, "untested": untested, "rules": len(findings),
            "not_judged_count": sum(counts.values()),
            "not_judged": [{"reason": k, "rules": v} for k, v in sorted(counts.items(), key=lambda kv: -kv[1])]}
