"""Labels held apart from the images, joined on image or subject; nothing silently dropped or overridden."""

import shutil

import numpy as np
import pandas as pd
import pytest

from audit import api
from audit.config import AuditConfig
from audit.data import load
from audit.data.labels import join_labels
from audit.errors import DatasetError
from audit.store import Store
from tests.builders import make_onnx


@pytest.fixture
def unlabelled(tmp_path, small_data):
    """The small synthetic set with sex, skin tone and age moved out of the manifest."""
    root = tmp_path / "data"
    shutil.copytree(small_data, root)
    m = pd.read_csv(root / "manifest.csv")
    m.drop(columns=["sex", "skin_tone", "age"]).to_csv(root / "manifest.csv", index=False)
    return root, m


def _leakage_run(root, labels, tmp_path):
    """A small leakage run of the data at ``root`` with ``labels``: (store, run id)."""
    db = tmp_path / "s.duckdb"
    cfg = AuditConfig(model=make_onnx(tmp_path / "m.onnx"), data=str(root), labels=labels, probes=["leakage"],
                      conditions=["clean"], bootstrap=30, mlp_epochs=10, folds=3, cv_repeats=1, parity=False)
    return db, api.run_audit(cfg, db)


def test_join_on_image(unlabelled, tmp_path):
    root, full = unlabelled
    labels = tmp_path / "labels.csv"
    full[["image", "sex", "age"]].to_csv(labels, index=False)
    ds, issues = join_labels(load(root), labels)
    assert not issues and {"sex", "age"} <= set(ds.attributes)
    assert ds.manifest["sex"].tolist() == full["sex"].astype(str).tolist()
    assert ds.dataset_id != load(root).dataset_id  # the labels are part of what was audited


def test_join_on_subject_and_unmatched_rows_are_listed(unlabelled, tmp_path):
    root, full = unlabelled
    per_person = full.groupby("subject", as_index=False)["skin_tone"].first()
    per_person = pd.concat([per_person, pd.DataFrame([{"subject": "nobody", "skin_tone": "dark"}])])
    labels = tmp_path / "people.csv"
    per_person.to_csv(labels, index=False)
    ds, issues = join_labels(load(root), labels)
    assert ds.manifest["skin_tone"].tolist() == full["skin_tone"].tolist()
    assert [(i.problem, i.row) for i in issues] == [("label_unmatched", len(per_person))]
    assert "'nobody' matches no subject" in issues[0].detail


@pytest.mark.parametrize("content,message", [
    ("image,sex\nimg_0.png,f\nimg_0.png,m\n", r"rows \[2\], column 'image': 'img_0.png' appears more than once"),
    ("person,sex\nx,f\n", "needs an 'image' or a 'subject' column"),
    ("subject,control\nx,1\n", "column 'control' is in both the manifest and the labels file"),
    ("subject,age\np0000,200\n", "row 1, column 'age'"),
    ("subject,lm0_x\np0000,3\n", "column 'lm0_x' is not an attribute"),
    ("subject\np0000\n", "no attribute columns"),
])
def test_bad_labels_are_one_line_errors(unlabelled, tmp_path, content, message):
    labels = tmp_path / "bad.csv"
    labels.write_text(content)
    with pytest.raises(DatasetError, match=message):
        join_labels(load(unlabelled[0]), labels)


def test_non_utf8_and_missing_labels_files(unlabelled, tmp_path):
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("subject,sex\np0000,f\u00e9minin\n".encode("latin-1"))
    with pytest.raises(DatasetError, match="not UTF-8"):
        join_labels(load(unlabelled[0]), bad)
    with pytest.raises(DatasetError, match="no such file"):
        join_labels(load(unlabelled[0]), tmp_path / "none.csv")


def test_run_with_labels_stores_and_reports_them(unlabelled, tmp_path):
    root, full = unlabelled
    labels = tmp_path / "labels.csv"
    rows = full[["image", "sex"]]
    pd.concat([rows, pd.DataFrame([{"image": "gone.png", "sex": "f"}])]).to_csv(labels, index=False)
    db, run_id = _leakage_run(root, labels, tmp_path)
    with Store(db) as s:
        m = s.metrics(run_id)
        q = s.data_quality(s.run(run_id)["dataset_id"])
    assert set(m["attribute"]) >= {"sex"}
    assert list(q["problem"]) == ["label_unmatched"]
    html = api.build_report(run_id, db, tmp_path / "out", ["html"])[0].read_text()
    assert "matched no image or person" in html and "--labels" in html


def test_duplicate_columns_no_match_partial_match_and_a_folder(unlabelled, tmp_path):
    """Issue 33 items 10, 11, 20: a second 'sex' column is refused (pandas named it 'sex.1', audited as a new
    attribute); no matching row is an error, a partial match one warning line with counts; a folder is named."""
    from audit.errors import FaceAuditWarning

    root, full = unlabelled
    labels = tmp_path / "labels.csv"
    labels.write_text("image,sex,sex\nimg_0.png,f,m\n")
    with pytest.raises(DatasetError, match=r"column 'sex' appears twice \(columns 2 and 3\)"):
        join_labels(load(root), labels)
    # 'Control' beside the manifest's 'control' (as 'Sex' beside 'sex') was a second attribute no rule reads
    labels.write_text("image,Control\nimg_0.png,f\n")
    with pytest.raises(DatasetError, match=r"labels.csv: column 'Control' and the dataset's column 'control' "
                                           r"differ only in case"):
        join_labels(load(root), labels)
    labels.write_text("Image,control\nimg_0.png,f\n")  # a key column in another case: named as such
    with pytest.raises(DatasetError, match=r"labels.csv: column 'Image' is not read as the key 'image' \(names are "
                                           r"read as written\); rename it 'image'"):
        join_labels(load(root), labels)
    full.assign(subject=range(len(full)))[["subject", "sex"]].to_csv(labels, index=False)  # numbers, not ids
    with pytest.raises(DatasetError, match="no label row matches the dataset on 'subject'"):
        join_labels(load(root), labels)
    full[["image", "sex"]].head(3).to_csv(labels, index=False)
    with pytest.warns(FaceAuditWarning, match=f"labels joined to 3 of {len(full)} images on 'image'; 0 of 3 label"):
        ds, issues = join_labels(load(root), labels)
    assert ds.manifest["sex"].notna().sum() == 3 and not issues
    with pytest.raises(DatasetError, match="is a folder; give the labels file itself"):
        join_labels(load(root), tmp_path)


@pytest.mark.parametrize("column,message", [
    ("long", r"row 2, column 'sex': a value of 5000000 characters; a group name may have at most 200"),
    ("many", r"column 'sex' has \d+ distinct values; an attribute may have at most 100 groups")])
def test_label_values_and_group_counts_are_bounded(unlabelled, tmp_path, column, message):
    """Issue 33 item 8: a 5,000,000-character group name made a 15 MB report whose PDF never finished."""
    root, full = unlabelled
    big = pd.DataFrame({"image": [f"x{i}.png" for i in range(150)], "sex": [f"g{i}" for i in range(150)]}) \
        if column == "many" else full[["image", "sex"]].assign(sex=["f", "x" * 5_000_000] + ["m"] * (len(full) - 2))
    labels = tmp_path / "labels.csv"
    big.to_csv(labels, index=False)
    with pytest.raises(DatasetError, match=message):
        join_labels(load(root), labels)
    manifest = pd.read_csv(root / "manifest.csv").assign(sex=big["sex"].iloc[:len(full)].to_numpy()
                                                         if column == "long" else
                                                         [f"g{i}" for i in range(len(full))])
    manifest.to_csv(root / "manifest.csv", index=False)
    if column == "long" or len(full) > 100:
        with pytest.raises(DatasetError, match="manifest.csv: " + message.split(": ", 1)[0] if column == "long"
                           else "manifest.csv: column 'sex' has"):
            load(root)


def test_another_name_of_a_judged_attribute_is_read_under_the_judged_name(unlabelled, tmp_path):
    """A 'Gender' or 'ethnicity' column must not turn the packs' sex or race rules off: it is read as 'sex' / 'race'
    with one warning line (labels file and manifest alike); a dataset that has 'sex' keeps its 'gender' as it is."""
    from audit.errors import FaceAuditWarning

    root, full = unlabelled
    labels = tmp_path / "labels.csv"
    full[["image", "sex", "skin_tone"]].rename(columns={"sex": "Gender", "skin_tone": "ethnicity"}).to_csv(labels,
                                                                                                            index=False)
    with pytest.warns(FaceAuditWarning, match="column 'Gender' is read as the attribute 'sex'"):
        ds, _ = join_labels(load(root), labels)
    assert {"sex", "race"} <= set(ds.attributes) and "Gender" not in ds.attributes
    assert ds.manifest["sex"].tolist() == full["sex"].astype(str).tolist()
    labels2 = tmp_path / "labels2.csv"  # 'Age' in brackets is a category of its own, not years
    full[["image"]].assign(Age=["20-29"] * len(full)).to_csv(labels2, index=False)
    assert "Age" in join_labels(load(root), labels2)[0].attributes
    m = pd.read_csv(root / "manifest.csv")
    m.assign(gender=full["sex"], sex=full["sex"]).to_csv(root / "manifest.csv", index=False)
    assert {"sex", "gender"} <= set(load(root).attributes)
    # a labels file's 'gender' beside a manifest's 'sex' stays 'gender' (not refused as a column in both)
    m.assign(sex=full["sex"]).to_csv(root / "manifest.csv", index=False)
    full[["image"]].assign(gender=full["sex"]).to_csv(labels, index=False)
    assert {"sex", "gender"} <= set(join_labels(load(root), labels)[0].attributes)
    from audit.models.profile import Head

    assert Head(attribute="Gender", output="o", type="categorical", labels=["f", "m"]).attribute == "sex"


def test_an_attribute_labelled_for_one_person_is_skipped_with_a_note_not_a_crash(unlabelled, tmp_path):
    """A labels file whose keys match one person (names spelt with spaces instead of underscores): that attribute
    cannot be split by person; leakage says so and attacks the others, and the run completes."""
    root, full = unlabelled
    labels = tmp_path / "labels.csv"
    one = full["subject"] == full["subject"].iloc[0]
    full[["image", "sex", "skin_tone"]].assign(sex=full["sex"].where(one)).to_csv(labels, index=False)
    db, run_id = _leakage_run(root, labels, tmp_path)
    with Store(db) as s:
        m, run, probes = s.metrics(run_id), s.run(run_id), s.probes(run_id)
    assert run["status"] == "completed" and m[m["attribute"] == "skin_tone"]["value"].notna().all()
    assert "attribute 'sex' not attacked: 1 labelled persons in 1 class" in " ".join(probes["message"].astype(str))
    # stored without a value: a rule reading sex never passes, nor one reading it beside another attribute
    sex = m[m["attribute"] == "sex"]
    assert set(sex["metric"]) == {"normalised_gain"} and sex["value"].isna().all()
    from audit.rules.engine import Rule, evaluate_rule

    both = Rule.model_validate(dict(id="R", title="t", probe="leakage", metric="normalised_gain", use="ci_low",
                                    where={"attribute": ["sex", "skin_tone"]}, warn_if="> 0.9", fail_if="> 0.95"))
    assert evaluate_rule(both, m, {"leakage"}).status == "not_applicable"
    html = api.build_report(run_id, db, tmp_path / "out", ["html"])[0].read_text()
    assert "attribute &#39;sex&#39; not attacked" in html or "attribute 'sex' not attacked" in html


def test_a_class_one_person_holds_is_left_out_of_the_attack_not_a_crash(unlabelled, tmp_path):
    """A review of the probes: a class held by one labelled person lands wholly in one fold, so a training fold lacked
    it and the attacker's fit raised, failing every attribute's leakage. Now such a class is left out with a note: a
    two-class attribute with one woman is then one class (not attacked, stored without a value), a third skin tone of
    one person leaves the others attacked."""
    root, full = unlabelled
    labels = tmp_path / "labels.csv"
    first = full["subject"] == full["subject"].iloc[0]
    full[["image", "sex", "skin_tone"]].assign(sex=np.where(first, "f", "m"),
                                               skin_tone=full["skin_tone"].astype(str).where(~first, "<b>7</b>")
                                               ).to_csv(labels, index=False)
    db, run_id = _leakage_run(root, labels, tmp_path)
    with Store(db) as s:
        m, run, probes = s.metrics(run_id), s.run(run_id), s.probes(run_id)
    notes = " ".join(probes["message"].astype(str))
    assert run["status"] == "completed", run
    assert "attribute 'sex': class 'f' left out of the attack: each held by one labelled person" in notes, notes
    assert "attribute 'skin_tone': class '<b>7</b>' left out" in notes and "attribute 'sex' not attacked" in notes
    assert m[m["attribute"] == "sex"]["value"].isna().all()
    assert m[m["attribute"] == "skin_tone"]["value"].notna().all()


def test_a_partly_labelled_attribute_counts_its_labelled_persons_and_images(unlabelled, tmp_path):
    """Leakage of an attribute labelled for some persons rests on those: n is their images, the interval is widened
    for their number (not the dataset's), and the chance level's interval stays within [0, 1]."""
    root, full = unlabelled
    people = sorted(full["subject"].unique())
    some = full["subject"].isin(people[: len(people) // 2])
    labels = tmp_path / "labels.csv"
    full[["image", "sex"]].assign(sex=full["sex"].where(some), skin_tone=full["skin_tone"]).to_csv(labels, index=False)
    db, run_id = _leakage_run(root, labels, tmp_path)
    with Store(db) as s:
        m = s.metrics(run_id)
    sex = m[(m["attribute"] == "sex") & (m["setting"] == "train=same")]
    assert set(sex["n"]) == {int(some.sum())} and len(full) > some.sum()
    assert set(m[(m["attribute"] == "skin_tone") & (m["setting"] == "train=same")]["n"]) == {len(full)}
    assert (m[m["metric"] == "chance"]["ci_high"] <= 1.0).all()


def test_spellings_of_one_person_or_group_are_one(unlabelled, tmp_path):
    """'male', 'Male' and 'male ' were three groups (the leakage chance fell to 1/4 and a sex rule passed; an all-male
    set had fairness fails), and 'p1 ' another person than 'p1' (the subject-disjoint folds split one person and the
    measured leakage doubled). Spaces and Unicode form never make another person or group; case makes another person
    but not another group, with a warning naming the spellings."""
    import unicodedata

    root, full = unlabelled
    m = pd.read_csv(root / "manifest.csv")
    first = ~m["subject"].duplicated()
    m.loc[first, "subject"] = m.loc[first, "subject"] + " "  # one photo of each person with a trailing space
    m.to_csv(root / "manifest.csv", index=False)
    per_person = full.groupby("subject", as_index=False)["sex"].first()
    spell = {0: str.upper, 1: lambda v: v + " ", 2: lambda v: unicodedata.normalize("NFD", v)}
    per_person["sex"] = [spell.get(i % 4, str)(v) for i, v in enumerate(per_person["sex"])]
    labels = tmp_path / "people.csv"
    per_person.to_csv(labels, index=False)
    with pytest.warns(UserWarning, match=r"people.csv: column 'sex': read .*'MALE'.* as 'male'"):
        ds, issues = join_labels(load(root), labels)
    assert ds.n_subjects == full["subject"].nunique() and not issues
    assert sorted(ds.manifest["sex"].unique()) == sorted(full["sex"].unique())
    assert ds.manifest["sex"].tolist() == full["sex"].tolist()


def test_a_labels_file_by_image_whose_subject_disagrees_with_the_manifest_is_refused(unlabelled, tmp_path):
    """A review of the input handling: a labels file keyed by image that also had a 'subject' column had it dropped
    unread, so two files that disagree on who is in a photo joined without a word. Agreeing ids join as before."""
    root, full = unlabelled
    labels = tmp_path / "labels.csv"
    full[["image", "subject", "sex"]].to_csv(labels, index=False)
    joined, _ = join_labels(load(root), labels)
    assert joined.manifest["sex"].tolist() == full["sex"].astype(str).tolist()
    wrong = full[["image", "subject", "sex"]].copy()
    wrong.loc[3, "subject"] = "someone_else"
    wrong.to_csv(labels, index=False)
    with pytest.raises(DatasetError, match=rf"^{labels}: row 4, column 'subject': 'someone_else' for image "
                                           rf"'{full['image'].iloc[3]}', where the manifest has "
                                           rf"'{full['subject'].iloc[3]}'; the two files disagree"):
        join_labels(load(root), labels)
