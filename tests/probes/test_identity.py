"""Identity probe: calibration, occlusion cost and demographic rows on the synthetic set."""

import numpy as np
import pytest

from audit.probes.identity import split_gallery
from tests.probes.conftest import pick

pytestmark = pytest.mark.slow


def test_threshold_and_fmr_on_clean(audit_runs):
    m = audit_runs("fr-baseline")
    # 300 people x 3 probes x 299 impostor galleries = 269,100 comparisons: all three targets are supported.
    thresholds = m[m["metric"] == "threshold"]
    assert set(thresholds["setting"]) == {"fmr=0.01", "fmr=0.001", "fmr=0.0001"}
    assert (thresholds["n"] == 300 * 3 * 299).all()
    fmr = pick(m, probe="identity", condition="clean", metric="fmr", setting="fmr=0.001")
    assert fmr["value"] <= 1e-3
    tar = pick(m, probe="identity", condition="clean", metric="tar_at_fmr", setting="fmr=0.001")
    assert tar["value"] > 0.9


def test_masks_cost_baseline_more_than_maskaware(audit_runs):
    def drop(name):
        m = audit_runs(name)
        clean = pick(m, probe="identity", condition="clean", metric="tar_at_fmr", setting="fmr=0.001")["value"]
        masked = pick(m, probe="identity", condition="mask:surgical", metric="tar_at_fmr", setting="fmr=0.001")
        return clean - masked["value"]

    assert drop("fr-baseline") > drop("fr-maskaware") + 0.05


def test_demographic_rows(audit_runs):
    m = audit_runs("fr-baseline")
    groups = m[(m["metric"] == "group_fnmr") & (m["attribute"] == "skin_tone") & (m["condition"] == "clean")]
    assert sorted(groups["group"]) == ["dark", "light", "medium"]
    fdr = pick(m, probe="identity", condition="clean", metric="fdr", attribute="sex")
    assert 0 <= fdr["ci_low"] <= fdr["value"] <= fdr["ci_high"] <= 1


def test_gallery_split_uses_first_image_and_skips_singletons():
    subjects = np.array(["a", "a", "b", "c", "c", "c"])
    gal, probes, own = split_gallery(subjects)
    assert gal.tolist() == [0, 3] and probes.tolist() == [1, 4, 5] and own.tolist() == [0, 1, 1]
