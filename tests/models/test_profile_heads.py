"""An attributes model's heads are checked against themselves and against the dataset before anything runs:
a head the probes would score wrongly, or on only some rows, is refused with one line naming the field."""

import pytest
import yaml

from audit import api
from audit.config import AuditConfig
from audit.errors import ConfigError, ProfileError
from audit.models.profile import load_profile
from tests.conftest import SAMPLE_MODELS

PROFILE = SAMPLE_MODELS / "attr-classifier.profile.yaml"


def _profile(tmp_path, change):
    doc = yaml.safe_load(PROFILE.read_text())
    change(doc)
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("change,words", [
    (lambda d: d["heads"].append(dict(d["heads"][0])), "field 'heads': attribute(s) ['sex'] have more than one head"),
    (lambda d: d["heads"][0].update(labels=["female", "female"]), "label(s) ['female'] given twice"),
    (lambda d: d["heads"][2].update(scale=float("nan")), "field 'heads.2.scale': Input should be a finite number"),
    (lambda d: d["heads"][2].update(offset=float("inf")), "field 'heads.2.offset': Input should be a finite number"),
])
def test_a_head_the_probes_would_score_wrongly_is_refused(tmp_path, change, words):
    path = _profile(tmp_path, change)
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    assert str(err.value).startswith(f"{path}: ") and words in str(err.value) and "\n" not in str(err.value)


def test_head_labels_must_name_every_value_of_the_attacked_attribute(tmp_path, small_data):
    """``Female``/``Male`` against a dataset that says ``female``/``male`` used to drop every row from the head's
    scores (and the rules then judged another attacker); now it is refused unless the attribute is left out."""
    path = _profile(tmp_path, lambda d: d["heads"][0].update(labels=["Female", "Male"]))
    cfg = AuditConfig(model=SAMPLE_MODELS / "attr-classifier.onnx", profile=path, data=str(small_data),
                      probes=["leakage"], conditions=["clean"], parity=False, bootstrap=20, mlp_epochs=3, folds=2)
    db = tmp_path / "s.duckdb"
    with pytest.raises(ConfigError) as err:
        api.run_audit(cfg, db)
    msg = str(err.value)
    assert msg.startswith(f"{path}: field 'heads.0.labels': ['Female', 'Male'] name none of the values "
                          "'female', 'male' of 'sex'") and "\n" not in msg
    assert not db.exists()
    api.check_config(cfg.model_copy(update={"attributes": ["age", "skin_tone"]}))  # sex not attacked: no check
