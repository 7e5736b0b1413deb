"""Meta-tests: every probe is registered, tested and documented; plugins load from entry points."""

import sys
from pathlib import Path

from audit.metrics.catalogue import METRICS
from audit.probes import REGISTRY, load_plugins, needs_embedding, supported

ROOT = Path(__file__).resolve().parents[2]


def test_every_registered_probe_has_a_test_module():
    for name in REGISTRY:
        assert (ROOT / "tests" / "probes" / f"test_{name}.py").is_file(), name


def test_every_probe_and_metric_is_documented_in_readme():
    readme = (ROOT / "README.md").read_text()
    for name in REGISTRY:
        assert f"`{name}`" in readme, name
    for metric in METRICS:
        if METRICS[metric]["probe"] in REGISTRY:
            assert f"`{metric}`" in readme, metric


def test_probes_follow_the_protocol():
    for name, cls in REGISTRY.items():
        assert cls.name == name and cls.title and callable(getattr(cls, "run")) and callable(getattr(cls, "check"))


def test_recognition_only_probes_are_a_property_of_the_probe():
    """Campaigns and the demo leave the probes that need embeddings out for attribute models; the probe says
    so itself (``needs_embedding``), so a plugin can too."""
    assert sorted(n for n, cls in REGISTRY.items() if needs_embedding(cls)) == ["cloak", "identity", "inversion",
                                                                                "membership"]
    # membership needs a 'member' label most datasets lack: it runs when named, never by default.
    assert supported("embedding") == [n for n in REGISTRY if n != "membership"]
    assert supported("embedding", opt_in=True) == list(REGISTRY) and supported("attributes") == ["leakage"]

    class Reader:
        name, title, needs_embedding = "reader", "Reader", True

    REGISTRY["reader"] = Reader
    try:
        assert "reader" not in supported("attributes") and "reader" in supported("embedding")
    finally:
        REGISTRY.pop("reader")


def test_third_party_probe_arrives_through_entry_point(tmp_path, monkeypatch):
    pkg = tmp_path / "fake_probe.py"
    pkg.write_text("class Fake:\n    name = 'fake'\n    title = 'Fake'\n"
                   "    def check(self, *a): pass\n    def run(self, ctx): pass\n")
    dist = tmp_path / "fake_probe-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-probe\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[audit.probes]\nfake = fake_probe:Fake\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        load_plugins()
        assert REGISTRY["fake"].title == "Fake"
    finally:
        REGISTRY.pop("fake", None)
        sys.modules.pop("fake_probe", None)
