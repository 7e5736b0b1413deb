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
