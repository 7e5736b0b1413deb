"""The operating-point setting is written and read by one module: what it writes, it reads back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.metrics.settings import is_unsupported, operating_point, rate_of, supported_form


@pytest.mark.parametrize("key, rate, unsupported, attack, written", [
    ("fmr", 1e-3, False, None, "fmr=0.001"),
    ("fmr", 1e-2, True, None, "fmr=0.01;unsupported"),
    ("fpr", 0.1, False, "strongest", "strongest;fpr=0.1"),
    ("fpr", 1e-3, True, "learned", "learned;fpr=0.001;unsupported"),
])
def test_written_as_rules_and_stored_results_name_it(key, rate, unsupported, attack, written):
    assert operating_point(key, rate, unsupported, attack) == written
    assert rate_of(written, key) == rate
    assert is_unsupported(written) is unsupported
    assert supported_form(written) == operating_point(key, rate, attack=attack)


@given(st.sampled_from(["fmr", "fpr"]), st.floats(1e-6, 1.0), st.booleans(),
       st.sampled_from([None, "strongest", "loss", "learned"]))
def test_reads_back_what_it_writes(key, rate, unsupported, attack):
    setting = operating_point(key, rate, unsupported, attack)
    assert rate_of(setting, key) == float(f"{rate:g}")
    assert rate_of(setting, "fmr" if key == "fpr" else "fpr") is None
    assert is_unsupported(setting) is unsupported


@pytest.mark.parametrize("setting", ["strongest", "", "fpr=", "fpr=abc", "fprx=0.1"])
def test_no_rate_is_none(setting):
    assert rate_of(setting, "fpr") is None
