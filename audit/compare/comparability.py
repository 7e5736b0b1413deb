"""Are two runs comparable? What differs between them, setting by setting.

Runs are comparable when they were made on the same data (dataset fingerprint) with every
result-affecting setting the same (:func:`audit.config.result_fields`: probes, conditions, attributes,
budgets, seeds, attack precision, helper models...), the same rule packs (by content hash) and the same
faceaudit minor version (0.3.x: a release that changes what a stored number means bumps the minor version; a
patch release changes verdicts, wording or speed, never a stored number). The model, and its profile, are what is compared, so they may differ. Only
comparable runs get paired statistics; otherwise the comparison says which fields differ.
"""

from __future__ import annotations

import json

import pandas as pd

from audit.config import result_fields, results_version
from audit.devices import stored_compute

MODEL_SPECIFIC = frozenset({"inputs.model", "inputs.profile"})
"""Fields that differ because the models do: never a reason to call runs incomparable."""
ATTACKS = frozenset({"attack_precision", "resolved.attack_precision", "attack threads"})
"""What the gradient attacks computed in: their precision, and torch's threads (recorded with the run's device; the
inversion figures move by up to about 0.01 between one and two threads)."""
PROBE_SPECIFIC = {
    "inversion": frozenset({"inputs.evaluator", "inputs.attacker_model", "inputs.attribute_model",
                            "inputs.helper_profiles.evaluator", "inputs.helper_profiles.attacker_model",
                            "inputs.helper_profiles.attribute_model",
                            "inversion_queries", "resolved.inversion_queries", "synthetic_faces",
                            "resolved.synthetic_faces"}) | ATTACKS,
    "cloak": frozenset({"inputs.surrogates", "inputs.helper_profiles.surrogates", "cloak_eps"}) | ATTACKS,
    "membership": frozenset({"inputs.reference_models", "inputs.helper_profiles.reference_models"}),
}
"""Settings that change only these probes' numbers: runs whose helper models differ can still be compared,
paired, on the other probes (a regulator's identity comparison does not need the same cloak surrogates)."""


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def run_fields(run: dict, findings: pd.DataFrame | None = None) -> dict:
    """The fields of a stored run (``Store.run``) that decide whether it can be compared with another.

    A setting the preset governs (folds, bootstrap, ...; attack precision, ``auto`` resolved) counts by the
    value the run used, ``resolved``, not by how it was given: ``--folds 5`` under a preset whose folds are 5 is
    the same run as leaving it out. Records from before ``resolved`` existed keep the raw setting."""
    record = result_fields(run.get("config") or {})
    resolved = record.get("resolved") or {}
    fields = _flatten({k: v for k, v in record.items() if k not in resolved})
    fields["dataset"] = run.get("dataset_id")
    threads = stored_compute(run).get("attack_threads")
    if threads:  # runs stored before 0.12.0 record none
        fields["attack threads"] = threads
    # a run of unknown version is comparable with none (two such runs may come from different releases)
    fields["faceaudit version"] = (results_version((run.get("environment") or {}).get("faceaudit"))
                                   or f"unknown (run {run.get('run_id')})")
    if findings is not None and not findings.empty and "pack_hash" in findings:
        packs = findings.drop_duplicates("pack").set_index("pack")["pack_hash"].to_dict()
        fields["rule packs"] = json.dumps(dict(sorted(packs.items())))
    return {k: v for k, v in fields.items() if k not in MODEL_SPECIFIC}


def differences(fields: list[dict]) -> list[dict]:
    """Fields whose values differ between runs: ``[{field, values}]`` (one value per run, as text)."""
    keys = sorted(set().union(*fields))
    out = []
    for key in keys:
        vals = [f.get(key) for f in fields]
        if any(json.dumps(v, sort_keys=True, default=str) != json.dumps(vals[0], sort_keys=True, default=str)
               for v in vals[1:]):
            out.append({"field": key, "values": ["—" if v is None else
                                                 v if isinstance(v, str) else json.dumps(v, default=str)
                                                 for v in vals]})
    return out


def blocking(diffs: list[dict], probe: str) -> list[str]:
    """The differing fields that keep ``probe``'s results from being compared paired: every differing field
    except the other probes' own settings and the list of probes run (a probe must simply have run in every run)."""
    others = set().union(*(f for p, f in PROBE_SPECIFIC.items() if p != probe)) - PROBE_SPECIFIC.get(probe, set())
    return [d["field"] for d in diffs if d["field"] not in others and d["field"] != "probes"]


def probe_comparability(fields: list[dict], ran: list[set[str]]) -> list[dict]:
    """For every probe at least two runs completed, what keeps its results from being compared paired among the
    runs that ran it (an attribute model runs leakage only): ``[{probe, blocking: [fields]}]``, ``fields`` and
    ``ran`` one entry per run (:func:`run_fields`, completed probes)."""
    probes = sorted(p for p in set().union(*ran) if sum(p in r for r in ran) >= 2)
    return [{"probe": p, "blocking": blocking(differences([f for f, r in zip(fields, ran) if p in r]), p)}
            for p in probes]


def preprocessing_outcome(check: dict | None) -> dict:
    """A run's stored preprocessing check (``preprocessing.json``) in a word and a sentence: ``passed``,
    ``overridden`` (a clearly better profile was found and the audit went on with ``--accept-profile``),
    ``not working`` (the model does not do its job on the data under any candidate) or ``not stored`` (runs made
    before the check, or resumed without it)."""
    if not check or not check.get("scores"):
        return {"state": "not stored", "words": "not stored"}
    cur = next((s for s in check["scores"] if s.get("in_use")), None)
    better = check.get("better")
    if better:
        words = (f"failed, overridden with --accept-profile: {check['measure']} "
                 f"{cur['score']:.3f} with the profile in use, {better['score']:.3f} with {better['setting']} "
                 f"(difference {better['diff']:.3f}, 95% CI {better['ci_low']:.3f} to {better['ci_high']:.3f}, "
                 f"{check['persons']} persons)" if cur else
                 f"failed, overridden with --accept-profile: {better['setting']} does clearly better")
        return {"state": "overridden", "words": words}
    if check.get("note"):
        return {"state": "not working", "words": f"the model does not do its job on this data: {check['note']}"}
    return {"state": "passed", "words": "passed" + (f" ({check['measure']} {cur['score']:.3f})" if cur else "")}


def profiles_differing(runs: list[dict], labels: list[str]) -> list[dict]:
    """Runs of one model file (same SHA-256) audited under different profiles (``inputs.profile``, the profile's
    content hash): ``[{model, sha256, runs: [label], profiles: [hash]}]``. Their differences are the profiles', not
    the models': never "only the models differ". Not a reason to refuse pairing (a profile is part of the model)."""
    by_model: dict[str, list[tuple[dict, str, str]]] = {}
    for run, label in zip(runs, labels):
        profile = ((run.get("config") or {}).get("inputs") or {}).get("profile")
        if run.get("model_id") and profile:  # a run stored before the profile hash was kept: not known to differ
            by_model.setdefault(run["model_id"], []).append((run, label, profile))
    return [{"model": same[0][0].get("model_name"), "sha256": sha, "runs": [lab for _, lab, _ in same],
             "profiles": [p for _, _, p in same]}
            for sha, same in by_model.items() if len({p for _, _, p in same}) > 1]
