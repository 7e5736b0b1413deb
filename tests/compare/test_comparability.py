"""Which fields keep two runs from being compared paired: settings count by the value the run used."""

from audit.compare import probe_comparability, run_fields
from audit.config import AuditConfig

PROBES = ["identity", "leakage", "cloak"]


def _run(**settings) -> dict:
    """A stored run (``Store.run``) of one config on dataset D; float32 attacks unless given (``auto`` depends
    on the machine)."""
    record = AuditConfig(model="m.onnx", data="d", probes=PROBES, **{"attack_precision": "float32", **settings}
                         ).to_record()
    record["inputs"] = {"model": "x", "dataset": "D", "profile": "p"}
    return {"config": record, "dataset_id": "D", "environment": {"faceaudit": "1.0"}}


def _blocking(a: dict, b: dict) -> dict:
    return {c["probe"]: c["blocking"] for c in probe_comparability([run_fields(a), run_fields(b)], [set(PROBES)] * 2)}


def test_an_explicit_setting_equal_to_the_presets_is_no_difference():
    """``folds=5`` under the quick preset (whose folds are 5) runs exactly what leaving it out runs."""
    assert _run()["config"]["resolved"]["folds"] == 5
    assert _blocking(_run(), _run(folds=5)) == dict.fromkeys(PROBES, [])


def test_auto_precision_resolved_to_the_same_is_no_difference():
    """``auto`` stored as resolved to float32 (a machine without native bfloat16) against explicit float32."""
    auto = _run()
    auto["config"]["attack_precision"] = "auto"
    assert _blocking(auto, _run()) == dict.fromkeys(PROBES, [])


def test_a_setting_that_really_differs_still_blocks():
    assert _blocking(_run(), _run(folds=6)) == dict.fromkeys(PROBES, ["resolved.folds"])
    assert _blocking(_run(), _run(attack_precision="bfloat16")) == {
        "identity": [], "leakage": [], "cloak": ["resolved.attack_precision"]}
    assert _blocking(_run(), _run(preset="standard"))["identity"][0] == "preset"


def test_torch_threads_keep_the_attacks_apart_only():
    """A review of the change: the inversion figures move by up to about 0.01 between one and two torch threads, as
    attack precision moves them; runs stored before the count was recorded compare as before."""
    two, one, old = _run(), _run(), _run()
    two["environment"]["compute"] = {"attack_threads": 2}
    one["environment"]["compute"] = {"attack_threads": 1}
    assert _blocking(two, one) == {"identity": [], "leakage": [], "cloak": ["attack threads"]}
    assert _blocking(two, two) == dict.fromkeys(PROBES, [])
    assert _blocking(old, _run()) == dict.fromkeys(PROBES, [])


def test_records_without_resolved_settings_compare_the_raw_ones():
    old = [_run(), _run(folds=6)]
    for run in old:
        del run["config"]["resolved"]
    assert _blocking(*old)["identity"] == ["folds"]


def test_patch_releases_compare_paired_and_minor_releases_do_not():
    """A patch release changes verdicts or wording, never what a stored number means: 0.4.0 and 0.4.1 runs are
    paired; 0.3.1 against 0.4.1 is side by side only, the field saying which versions."""
    old, new, older = _run(), _run(), _run()
    old["environment"]["faceaudit"], new["environment"]["faceaudit"] = "0.4.0", "0.4.1"
    older["environment"]["faceaudit"] = "0.3.1"
    assert _blocking(old, new) == dict.fromkeys(PROBES, [])
    assert _blocking(older, new) == dict.fromkeys(PROBES, ["faceaudit version"])
    assert run_fields(older)["faceaudit version"] == "0.3.x"
    # two runs that name no version may come from different releases: never paired (a review of the comparison)
    a, b = _run(), _run()
    del a["environment"]["faceaudit"], b["environment"]["faceaudit"]
    a["run_id"], b["run_id"] = "ra", "rb"
    assert _blocking(a, b) == dict.fromkeys(PROBES, ["faceaudit version"])
