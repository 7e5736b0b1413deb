"""Issue 11 (silent acceptance): helper models that compare faces must be face-recognition models."""

import pytest

from audit import api
from audit.config import AuditConfig
from audit.errors import ConfigError


@pytest.mark.parametrize("field, option", [("evaluator", "--evaluator"), ("attacker_model", "--attacker-model"),
                                           ("surrogates", "--surrogate")])
def test_attribute_model_as_fr_helper_is_refused(sample_model, tmp_path, field, option):
    attr = sample_model("attr-classifier")
    value = [attr] if field == "surrogates" else attr
    cfg = AuditConfig(model=sample_model("fr-baseline"), data=str(tmp_path / "none"), **{field: value})
    with pytest.raises(ConfigError, match=f"{option} .*not a face-recognition"):
        api.run_audit(cfg, tmp_path / "s.duckdb")
    assert not (tmp_path / "s.duckdb").exists()


def test_a_helpers_profile_is_part_of_the_run_record(sample_model, small_data, tmp_path):
    """A review of reproducibility: only a helper's file hash was recorded, so an evaluator whose profile turned
    from RGB to BGR (its embeddings of the same faces moved to cosine 0.3-0.6) kept the run record and the campaign
    hash, --resume went on and a comparison paired the runs. Its profile is recorded beside its file now; a run
    without helpers records none, and the field keeps inversion comparisons apart only."""
    import shutil

    import yaml

    from audit.compare.comparability import blocking, differences, run_fields
    from audit.config import resume_conflicts
    from audit.run.inputs import load_inputs

    helper = tmp_path / "judge.onnx"
    shutil.copy(sample_model("fr-robust"), helper)
    sidecar = helper.with_name("judge.profile.yaml")
    profile = yaml.safe_load(sample_model("fr-robust").with_name("fr-robust.profile.yaml").read_text())
    cfg = AuditConfig(model=sample_model("fr-baseline"), data=str(small_data), evaluator=helper,
                      probes=["identity"], conditions=["clean"])
    records = []
    for color in ("RGB", "BGR"):
        sidecar.write_text(yaml.safe_dump({**profile, "input": {**profile["input"], "color": color}}))
        records.append(load_inputs(cfg).record(cfg))
    assert records[0]["inputs"]["evaluator"] == records[1]["inputs"]["evaluator"]  # the same file
    assert resume_conflicts(*records) == ["helper_profiles (a different helper model profile from the stored run's)"]
    fields = [run_fields({"config": r, "environment": {"faceaudit": "0.12.0"}}) for r in records]
    diffs = differences(fields)
    assert [d["field"] for d in diffs] == ["inputs.helper_profiles.evaluator"]
    assert blocking(diffs, "inversion") == ["inputs.helper_profiles.evaluator"] and blocking(diffs, "identity") == []
    plain = load_inputs(cfg.model_copy(update={"evaluator": None})).record(cfg)
    assert "helper_profiles" not in plain["inputs"]
