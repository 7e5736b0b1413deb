"""YAML merge keys (``<<: *defaults``) in packs, profiles, campaigns and protocols: merged as YAML specifies, with
duplicate keys still refused."""

from textwrap import dedent

import pytest
import yaml

from audit.errors import ConfigError, RuleError
from audit.executors import load_campaign
from audit.rules.engine import load_pack
from audit.yamlio import first_line, load_yaml, read_yaml


def error_of(text: str) -> str:
    with pytest.raises(yaml.YAMLError) as err:
        load_yaml(dedent(text))
    return first_line(err.value)


def test_keys_given_in_the_mapping_override_merged_ones():
    data = load_yaml(dedent("""\
        base: &base {preset: quick, seed: 1, device: cpu}
        run:
          <<: *base
          seed: 7
        """))
    assert data["run"] == {"preset": "quick", "seed": 7, "device": "cpu"}
    assert data["base"] == {"preset": "quick", "seed": 1, "device": "cpu"}  # the anchored mapping is untouched


def test_an_earlier_mapping_in_a_merge_list_overrides_a_later_one():
    """PyYAML 6.0.x let the later one win for keys Python does not intern (a long or non-identifier string)."""
    data = load_yaml(dedent("""\
        a: &a {normalised_gain: 1, 'x y': 1, only_a: 1}
        b: &b {normalised_gain: 2, 'x y': 2, only_b: 2}
        c:
          <<: [*a, *b]
          own: 3
        """))
    assert data["c"] == {"normalised_gain": 1, "x y": 1, "only_a": 1, "only_b": 2, "own": 3}


def test_merges_chain_and_an_anchor_merges_into_several_mappings():
    data = load_yaml(dedent("""\
        base: &b {x: 1, q: 1}
        mid: &m
          <<: *b
          x: 2
        top:
          <<: *m
          t: 1
        again:
          <<: *m
        """))
    assert data["mid"] == {"q": 1, "x": 2} and data["top"] == {"q": 1, "x": 2, "t": 1} and data["again"] == data["mid"]


@pytest.mark.parametrize("text,message", [
    ("a: &a {x: 1}\nc:\n  <<: *a\n  y: 1\n  y: 2\n", r"duplicate key 'y' \(first at line 4\) \(line 5"),
    ("c:\n  <<: {x: 1, x: 2}\n", r"duplicate key 'x' \(first at line 2\)"),
    ("a: &a {x: 1}\nc:\n  <<: *a\n  <<: {y: 2}\n", r"duplicate key '<<' \(first at line 3\); merge several mappings "
                                                 r"with one '<<: \[\*a, \*b\]' \(line 4"),
    ("c:\n  <<: 3\n", r"'<<' merges a mapping or a list of mappings, not a scalar"),
    ("c:\n  <<: [{x: 1}, 2]\n", r"'<<' merges a mapping or a list of mappings, not a scalar"),
    ("a: &a\n  x: 1\n  <<: *a\n", r"a mapping merges itself"),
])
def test_duplicate_keys_and_bad_merges_are_still_one_line(text, message):
    import re

    assert re.search(message, error_of(text))


def test_a_pack_and_a_campaign_with_merge_keys_load(tmp_path):
    pack = tmp_path / "anchors.yaml"
    pack.write_text(dedent("""\
        pack: mine
        rules:
          - &r1
            id: R1
            title: t
            probe: leakage
            metric: normalised_gain
            fail_if: '> 0.1'
          - <<: *r1
            id: R2
            fail_if: '> 0.5'
        """))
    rules = load_pack(pack).rules
    assert [(r.id, r.metric, r.fail_if) for r in rules] == [("R1", "normalised_gain", "> 0.1"),
                                                            ("R2", "normalised_gain", "> 0.5")]
    pack.write_text(pack.read_text() + "    fail_if: '> 0.9'\n")
    with pytest.raises(RuleError, match=r"duplicate key 'fail_if' \(first at line 11\)"):
        load_pack(pack)
    (tmp_path / "m.onnx").write_bytes(b"")
    camp = tmp_path / "c.yaml"
    camp.write_text("campaign: c1\n<<: {preset: thorough, seed: 3}\nseed: 9\nmodels: [m.onnx]\ndatasets: [sample]\n")
    c = load_campaign(camp)
    assert (c.preset, c.seed) == ("thorough", 9)
    assert read_yaml(camp, ConfigError)["preset"] == "thorough"


def test_yaml_nested_thousands_deep_is_one_line_not_a_traceback(tmp_path):
    """A review of the input handling: a profile, pack, protocol or campaign nested 5,000 levels deep raised
    RecursionError out of the parser, a traceback."""
    deep = tmp_path / "deep.yaml"
    deep.write_text("name: x\nguessed: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match=r"deep.yaml: not valid YAML: nested too deeply$"):
        read_yaml(deep, ConfigError)
