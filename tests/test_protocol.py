"""Protocols: one published file pins what makes runs comparable; runs under it record it and are checked."""

import base64
import hashlib
import json

import pytest
import yaml

import audit
from audit import api
from audit.errors import ConfigError
from audit.protocol import load_protocol
from audit.resources import protocols_dir, rules_dir
from audit.store import Store
from tests.test_cli import run_cli


def _write(path, **over):
    doc = {"protocol": "tiny-world", "version": "2", "faceaudit": ">=0.1,<1",
           "dataset": {"recipe": "sample", "seed": 0, "people": 40, "images": 4},
           "probes": ["identity"], "conditions": ["clean"], "preset": "quick", "overrides": {"bootstrap": 20},
           "seed": 5, "packs": {"baseline": hashlib.sha256((rules_dir() / "baseline.yaml").read_bytes()).hexdigest()}}
    doc.update(over)
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("name", ["sample-world", "sample-membership"])
def test_the_shipped_protocols_match_the_shipped_packs_and_this_version(name):
    """The shipped protocols pin the shipped packs by content: a pack edit must update them (or be refused)."""
    assert sorted(p.stem for p in protocols_dir().glob("*.yaml")) == ["sample-membership", "sample-world"]
    proto = load_protocol(protocols_dir() / f"{name}.yaml")
    for pack, digest in proto.packs.items():
        assert hashlib.sha256((rules_dir() / f"{pack}.yaml").read_bytes()).hexdigest() == digest, pack
    assert set(proto.packs) == {p.stem for p in rules_dir().glob("*.yaml")}
    from packaging.specifiers import SpecifierSet

    assert audit.__version__ in SpecifierSet(proto.faceaudit)


def test_a_run_under_a_protocol_takes_its_settings_and_records_it(tmp_path, small_data, tiny_model):
    proto = _write(tmp_path / "p.yaml")
    db = tmp_path / "s.duckdb"
    code, out = run_cli("run", "--model", tiny_model, "--data", small_data, "--protocol", proto, "--db", db,
                        "--no-parity")
    assert code == 0, out
    with Store(db, read_only=True) as s:
        run = s.runs().iloc[0]
        rec = s.run(run["run_id"])
        findings = s.findings(run["run_id"])
    cfg = rec["config"]
    assert cfg["seed"] == 5 and cfg["probes"] == ["identity"] and cfg["conditions"] == ["clean"]
    assert cfg["bootstrap"] == 20
    assert cfg["protocol"]["name"] == "tiny-world" and cfg["protocol"]["sha256"] == hashlib.sha256(
        proto.read_bytes()).hexdigest()
    assert set(findings["pack"]) == {"baseline"}  # the protocol's packs are the default
    html = run_cli("report", run["run_id"], "--db", db, "--out", tmp_path / "r", "--format", "html")
    assert html[0] == 0
    text = next((tmp_path / "r").glob("*.html")).read_text()
    assert "tiny-world" in text and cfg["protocol"]["sha256"] in text
    # The signed attestation names the protocol and its hash beside the rule packs.
    priv, _ = api.keygen(tmp_path / "k")
    _, bundle = api.attest_run(run["run_id"], db, priv, tmp_path / "att", "Ada")
    env = json.loads(bundle.read_text())["dsseEnvelope"]
    conf = json.loads(base64.b64decode(env["payload"]))["predicate"]["configuration"]
    assert {"name": "protocol:tiny-world@2", "digest": {"sha256": cfg["protocol"]["sha256"]}} in conf


@pytest.mark.parametrize("args,words", [
    (["--seed", "3"], "--seed 3 contradicts protocol 'tiny-world'"),
    (["--conditions", "clean,mask:surgical"], "contradicts protocol 'tiny-world'"),
    # a budget the protocol leaves to its preset: a weaker attacker under the protocol's name (a review)
    (["--inversion-queries", "21"], "--inversion-queries 21 contradicts protocol 'tiny-world'"),
])
def test_options_that_contradict_the_protocol_are_refused(tmp_path, small_data, tiny_model, args, words):
    code, out = run_cli("run", "--model", tiny_model, "--data", small_data, "--protocol", _write(tmp_path / "p.yaml"),
                        "--db", tmp_path / "s.duckdb", "--no-parity", *args)
    assert code == 2 and words in out and not (tmp_path / "s.duckdb").exists()


def test_the_wrong_dataset_pack_or_version_is_refused_before_anything_is_written(tmp_path, small_data, tiny_model):
    db = tmp_path / "s.duckdb"
    base = ["run", "--model", tiny_model, "--data", small_data, "--db", db, "--no-parity", "--protocol"]
    code, out = run_cli(*base, _write(tmp_path / "a.yaml", dataset={"recipe": "sample", "seed": 0, "people": 41,
                                                                     "images": 4}))
    assert code == 2 and "pins the sample world" in out
    code, out = run_cli(*base, _write(tmp_path / "b.yaml", dataset={"fingerprint": "0" * 64}))
    assert code == 2 and "pins the dataset with fingerprint" in out
    code, out = run_cli(*base, _write(tmp_path / "c.yaml", packs={"baseline": "1" * 64}))
    assert code == 2 and "pins pack 'baseline'" in out
    code, out = run_cli(*base, _write(tmp_path / "d.yaml", faceaudit=">=9"))
    assert code == 2 and "is for faceaudit >=9" in out
    assert not db.exists() or Store(db, read_only=True).runs().empty


@pytest.mark.parametrize("over,field", [({"overrides": {"shoe_size": 3}}, "overrides"), ({"packs": {"x": "abc"}}, "packs"),
                                        ({"dataset": {"seed": 0}}, "dataset"),  # neither recipe nor fingerprint
                                        ({"detector": "mtcnn", "min_face_confidence": 2}, "min_face_confidence"),
                                        ({"faceaudit": "not a range"}, "faceaudit"), ({"colour": 1}, "colour"),
                                        ({"overrides": {"bootstrap": 0}}, "overrides.bootstrap"),
                                        ({"cloak_eps": [-3]}, "cloak_eps.0"),
                                        ({"helpers": {"judge": "0" * 64}}, "helpers"),
                                        ({"helpers": {"surrogates": "0" * 64}}, "helpers"),
                                        ({"helpers": {"evaluator": "abc"}}, "helpers"),
                                        ({"helpers": {"evaluator": None}}, "helpers")])
def test_a_bad_protocol_file_is_one_line_naming_the_field(tmp_path, over, field):
    path = _write(tmp_path / "p.yaml", **over)
    with pytest.raises(ConfigError) as err:
        load_protocol(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: field '{field}") and "\n" not in msg


def test_a_campaign_under_a_protocol_pins_every_cell(tmp_path, small_data, tiny_model):
    from audit.executors.campaign import load_campaign
    from audit.executors.cells import campaign_cells

    proto = _write(tmp_path / "p.yaml")
    camp = tmp_path / "c.yaml"
    camp.write_text(yaml.safe_dump({"campaign": "c", "models": [str(tiny_model)], "datasets": [str(small_data)],
                                    "protocol": "p.yaml"}))
    loaded = load_campaign(camp)
    assert loaded.packs == ["baseline"]
    (cell,) = campaign_cells(loaded)
    assert cell.config.seed == 5 and cell.config.probes == ["identity"] and cell.config.bootstrap == 20
    assert cell.config.protocol["sha256"] == hashlib.sha256(proto.read_bytes()).hexdigest()
    camp.write_text(yaml.safe_dump({"campaign": "c", "models": [str(tiny_model)], "datasets": [str(small_data)],
                                    "protocol": "p.yaml", "seed": 1}))
    with pytest.raises(ConfigError) as err:
        load_campaign(camp)
    assert f"{camp}: field 'seed': 1 contradicts protocol 'tiny-world'" in str(err.value)


def test_the_demo_runs_under_the_sample_world_protocol_at_its_defaults(tmp_path):
    from audit.executors.cells import demo_cells

    cells = demo_cells(tmp_path, "quick", 0)
    proto = load_protocol(protocols_dir() / "sample-world.yaml")
    assert {c.config.protocol["sha256"] for c in cells} == {proto.sha256}
    kinds = {c.label: c.config.probes for c in cells}
    assert kinds["attr-classifier"] == ["leakage"] and kinds["fr-baseline"] == proto.probes
    assert all(c.config.conditions == proto.conditions for c in cells)
    assert all(c.config.protocol is None for c in demo_cells(tmp_path, "standard", 0))  # not that protocol


def test_the_demo_audits_every_recognition_model_for_membership_under_its_protocol(tmp_path):
    """With the planted membership set the demo adds one membership run per recognition model (the attribute
    classifier has no embedding to attack), under protocols/sample-membership.yaml, on that set only."""
    from audit.executors.cells import demo_cells

    world = demo_cells(tmp_path / "world", "quick", 0)
    cells = demo_cells(tmp_path / "world", "quick", 0, membership_data=tmp_path / "members")
    assert [c.label for c in cells[:len(world)]] == [c.label for c in world]
    member = cells[len(world):]
    fr = [c.label for c in world if c.config.probes != ["leakage"]]
    assert [c.label for c in member] == [f"{name} (membership)" for name in fr] and len(fr) == 4
    proto = load_protocol(protocols_dir() / "sample-membership.yaml")
    for c in member:
        assert c.config.probes == ["membership"] and c.config.conditions == ["clean"]
        assert c.config.data == str(tmp_path / "members") and c.config.protocol["sha256"] == proto.sha256
    other = demo_cells(tmp_path, "standard", 0, membership_data=tmp_path)[len(world):]
    assert len(other) == 4 and all(c.config.protocol is None for c in other)  # not that protocol, the same probe
    assert all(c.config.probes == ["membership"] and c.config.conditions == ["clean"] for c in other)


def test_the_demo_audits_membership_only_for_the_models_that_were_trained_on_the_planted_members(tmp_path,
                                                                                                  tiny_model):
    """The planted members are the sample models' training persons: a model of one's own given to the demo gets the
    sample world's probes, never a membership run on persons it did not train on (which could only reassure)."""
    from audit.executors.cells import _membership_needed, demo_cells
    from audit.run import sample_models

    fr = next(m for m in sample_models() if m.stem == "fr-baseline")
    cells = demo_cells(tmp_path, "quick", 0, models=[tiny_model, fr], membership_data=tmp_path / "members")
    assert [c.config.probes for c in cells if c.config.data == str(tmp_path / "members")] == [["membership"]]
    assert [c.label for c in cells][-1] == "fr-baseline (membership)"
    assert not _membership_needed([tiny_model]) and _membership_needed([fr]) and _membership_needed(None)


def test_a_protocol_can_pin_the_membership_sample_set(tmp_path, small_data, tiny_model):
    """recipe: sample-membership pins the planted membership control by its recipe (members, non-members,
    images); the sample world is not it, a membership set is not the sample world, and the counts must match."""
    from audit.synth import MembershipRecipe, materialise

    members, _, _ = materialise(tmp_path / "members", MembershipRecipe(members=10, nonmembers=10, images=3), workers=1)
    pin = {"recipe": "sample-membership", "members": 10, "nonmembers": 10, "images": 3}
    proto = _write(tmp_path / "m.yaml", dataset=pin, probes=["membership"])
    db = tmp_path / "s.duckdb"
    base = ["run", "--model", tiny_model, "--db", db, "--no-parity", "--protocol"]
    code, out = run_cli(*base, _write(tmp_path / "i.yaml", dataset=pin), "--data", small_data)  # probes: identity
    assert code == 2 and "pins the membership sample set" in out and "this dataset is the sample world" in out
    code, out = run_cli(*base, _write(tmp_path / "w.yaml", probes=["membership"]), "--data", members)
    assert code == 2 and "this dataset is the membership sample set" in out
    code, out = run_cli(*base, _write(tmp_path / "n.yaml", dataset={**pin, "nonmembers": 12}, probes=["membership"]),
                        "--data", members)
    assert code == 2 and "'nonmembers': 12" in out and "'nonmembers': 10" in out
    assert not db.exists() or Store(db, read_only=True).runs().empty
    code, out = run_cli(*base, proto, "--data", members)
    assert code == 0, out
    with Store(db, read_only=True) as s:
        run = s.runs().iloc[0]
        cfg = s.run(run["run_id"])["config"]
        metrics = s.metrics(run["run_id"])
    assert cfg["protocol"]["dataset"] == pin and cfg["probes"] == ["membership"]
    assert {"membership_auc", "membership_tpr_at_fpr"} <= set(metrics["metric"])
    with pytest.raises(ConfigError, match="field 'dataset'.*'seed' is not a setting of recipe 'sample-membership'"):
        load_protocol(_write(tmp_path / "bad.yaml", dataset={**pin, "seed": 0}))


def _lenient_copy(path):
    """The shipped baseline pack under another id (a copy of the pinned pack that could then be loosened)."""
    doc = yaml.safe_load((rules_dir() / "baseline.yaml").read_text())
    doc["pack"] = "baseline-lenient"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_pack_the_protocol_does_not_pin_is_refused_for_a_run_and_a_campaign(tmp_path, small_data, tiny_model):
    """A protocol pinning packs refuses every other pack (before, only packs with a pinned id were checked, so a
    renamed lenient copy of baseline passed), in one line naming the protocol file and the pack."""
    from audit.executors.campaign import load_campaign

    proto, lenient = _write(tmp_path / "p.yaml"), _lenient_copy(tmp_path / "lenient.yaml")
    db = tmp_path / "s.duckdb"
    code, out = run_cli("run", "--model", tiny_model, "--data", small_data, "--protocol", proto, "--db", db,
                        "--no-parity", "--pack", lenient)
    assert code == 2 and str(proto) in out and "'baseline-lenient'" in out and "\n" not in out.strip()
    assert not db.exists() or Store(db, read_only=True).runs().empty  # refused before anything ran
    camp = tmp_path / "c.yaml"
    camp.write_text(yaml.safe_dump({"campaign": "c", "models": [str(tiny_model)], "datasets": [str(small_data)],
                                    "protocol": "p.yaml", "packs": ["lenient.yaml"]}))
    with pytest.raises(ConfigError) as err:
        api.run_campaign(camp, tmp_path / "c.duckdb")
    msg = str(err.value)
    assert msg.startswith(f"{camp}: field 'packs': {proto}") and "'baseline-lenient'" in msg and "\n" not in msg
    assert not (tmp_path / "c.duckdb").exists()
    camp.write_text(yaml.safe_dump({"campaign": "c", "models": [str(tiny_model)], "datasets": [str(small_data)],
                                    "protocol": "p.yaml", "packs": ["baseline"]}))
    assert load_campaign(camp).packs == ["baseline"]  # the pinned pack itself is accepted


def test_the_gate_judges_a_protocol_run_with_the_packs_it_pins(tmp_path, small_data, tiny_model):
    """As run and report do: the protocol's packs are the default, and a pack it does not pin is refused (the
    gate opened on a renamed lenient copy before)."""
    proto, lenient = _write(tmp_path / "p.yaml"), _lenient_copy(tmp_path / "lenient.yaml")
    db = tmp_path / "s.duckdb"
    code, out = run_cli("run", "--model", tiny_model, "--data", small_data, "--protocol", proto, "--db", db,
                        "--no-parity")
    assert code == 0, out
    run_id = Store(db, read_only=True).runs().iloc[0]["run_id"]
    assert set(api.gate(run_id, db, None, "fail").findings["pack"]) == {"baseline"}
    with pytest.raises(ConfigError, match="'baseline-lenient'.*is not one of them"):
        api.gate(run_id, db, [lenient], "fail")


def test_a_misspelt_probe_in_a_protocol_is_an_error_not_a_dropped_probe(tmp_path, small_data, tiny_model):
    """A campaign under a protocol naming an unknown probe ran without it (the name was dropped with the probes the
    model's kind cannot run); now the campaign refuses it in one line naming the campaign and protocol files, as a
    run refuses it."""
    from audit.executors import campaign_cells, load_campaign

    proto = _write(tmp_path / "p.yaml", probes=["identity", "leakge"])
    camp = tmp_path / "c.yaml"
    camp.write_text(yaml.safe_dump({"campaign": "c", "models": [str(tiny_model)], "datasets": [str(small_data)],
                                    "protocol": "p.yaml"}))
    with pytest.raises(ConfigError) as err:
        campaign_cells(load_campaign(camp))
    msg = str(err.value)
    assert msg.startswith(f"{camp}: field 'protocol': {proto}: field 'probes.1': unknown probe 'leakge'")
    assert "\n" not in msg
    code, out = run_cli("run", "--model", tiny_model, "--data", small_data, "--protocol", proto,
                        "--db", tmp_path / "s.duckdb", "--no-parity")
    assert code == 2 and "unknown probe 'leakge'" in out


def test_probes_a_model_kind_cannot_run_are_still_left_out_of_its_cells(tmp_path, small_data, sample_model):
    """Known probes that do not apply to a model's kind (identity for an attribute model) are skipped, as before."""
    import shutil

    from audit.executors import campaign_cells, load_campaign

    shutil.copy(sample_model("attr-classifier"), tmp_path / "attr.onnx")
    shutil.copy(sample_model("attr-classifier").with_name("attr-classifier.profile.yaml"),
                tmp_path / "attr.profile.yaml")
    _write(tmp_path / "p.yaml", probes=["identity", "leakage"])
    camp = tmp_path / "c.yaml"
    camp.write_text(yaml.safe_dump({"campaign": "c", "models": ["attr.onnx"], "datasets": [str(small_data)],
                                    "protocol": "p.yaml"}))
    (cell,) = campaign_cells(load_campaign(camp))
    assert cell.config.probes == ["leakage"]


@pytest.mark.parametrize("damage", ["rows", "image", "subset"])
def test_a_truncated_or_edited_copy_of_a_pinned_recipe_is_refused(tmp_path, small_data, tiny_model, damage):
    """recipe.json records the SHA-256 of the files it wrote: a copy with manifest rows removed (it still says
    40 people), an image changed, or a second manifest of some persons beside the untouched one does not meet a
    protocol that pins the recipe."""
    import shutil

    import pandas as pd

    copy = tmp_path / "copy"
    shutil.copytree(small_data, copy)
    manifest = pd.read_csv(copy / "manifest.csv")
    data = copy
    keep = manifest["subject"].isin(sorted(manifest["subject"].unique())[:30])
    if damage == "rows":
        manifest[keep].to_csv(copy / "manifest.csv", index=False)
    elif damage == "subset":
        data = copy / "subset.csv"
        manifest[keep].to_csv(data, index=False)
    else:
        image = copy / manifest["image"].iloc[5]
        image.write_bytes(image.read_bytes()[:-10] + b"\0" * 10)
    db = tmp_path / "s.duckdb"
    code, out = run_cli("run", "--model", tiny_model, "--data", data, "--db", db, "--no-parity", "--protocol",
                        _write(tmp_path / "p.yaml"))
    words = ("pins a synthetic recipe, audited as written" if damage == "subset" else
             f"{copy}: its manifest or images differ from the recipe recorded in recipe.json")
    assert code == 2 and words in " ".join(out.split())
    assert not db.exists() or Store(db, read_only=True).runs().empty
    # The intact set still meets it (the check reads the same files the run does).
    code, out = run_cli("run", "--model", tiny_model, "--data", small_data, "--db", db, "--no-parity",
                        "--protocol", _write(tmp_path / "p.yaml"))
    assert code == 0, out


@pytest.mark.parametrize("over,words", [
    ({"conditions": ["clean", "mask:bogus"]}, "{proto}: field 'conditions.1': unknown condition 'mask:bogus'"),
    ({"attributes": ["height"]}, "protocol 'tiny-world': field 'attributes': 'height' not among the attributes"),
    ({"overrides": {"folds": 1}}, "{proto}: field 'overrides.folds': Input should be greater than or equal to 2"),
])
def test_a_bad_value_in_a_protocol_names_the_protocol_not_an_option_nobody_gave(tmp_path, small_data, tiny_model,
                                                                               over, words):
    proto = _write(tmp_path / "p.yaml", **over)
    db = tmp_path / "s.duckdb"
    code, out = run_cli("run", "--model", tiny_model, "--data", small_data, "--protocol", proto, "--db", db,
                        "--no-parity")
    assert code == 2 and words.format(proto=proto) in " ".join(out.split())
    assert not db.exists() or Store(db, read_only=True).runs().empty


def test_a_protocol_with_helpers_pins_the_helper_models_by_content(tmp_path, small_data, tiny_model):
    """A protocol named no helper models, so two runs under its name could judge inversion by other evaluators or
    transfer cloaks from other surrogates (the README said so: "not pinned yet"). With ``helpers`` it pins every
    role by SHA-256: the same file under another path passes, another file, a missing one or a helper it does not
    name is refused before anything is written; without ``helpers`` nothing is pinned, as before."""
    import shutil

    from tests.builders import make_onnx

    digest = hashlib.sha256(tiny_model.read_bytes()).hexdigest()
    copy = tmp_path / "judge.onnx"
    shutil.copy(tiny_model, copy)
    other = make_onnx(tmp_path / "other.onnx", seed=1)
    db = tmp_path / "s.duckdb"

    def run(proto, *helpers):
        return run_cli("run", "--model", tiny_model, "--data", small_data, "--db", db, "--no-parity", "--protocol",
                       proto, *helpers)

    pinned = _write(tmp_path / "pinned.yaml", helpers={"evaluator": digest})
    for helpers, words in [((), "pins --evaluator the file with SHA-256 " + digest + "; this run gives none"),
                           (("--evaluator", other), "this run gives the file with SHA-256 "
                            + hashlib.sha256(other.read_bytes()).hexdigest()),
                           (("--evaluator", copy, "--surrogate", copy), f"pins --surrogate none; this run gives 1 "
                            f"file(s) with SHA-256 {digest}")]:
        code, out = run(pinned, *helpers)
        assert code == 2 and words in out and "\n" not in out.strip(), out
        assert not db.exists() or Store(db, read_only=True).runs().empty
    code, out = run(_write(tmp_path / "none.yaml", helpers={}), "--evaluator", copy)
    assert code == 2 and "pins --evaluator none" in out
    code, out = run(pinned, "--evaluator", copy)  # the pinned file under another name
    assert code == 0, out
    code, out = run(_write(tmp_path / "free.yaml"), "--evaluator", other)  # no helpers: not pinned
    assert code == 0, out
    with Store(db, read_only=True) as s:
        records = [s.run(r)["config"]["protocol"] for r in s.runs()["run_id"]]
    assert sorted("helpers" in r for r in records) == [False, True]
    assert next(r for r in records if "helpers" in r)["helpers"] == {"evaluator": digest}
