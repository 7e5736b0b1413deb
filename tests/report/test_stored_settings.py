"""Every setting a real run stores is one a rule pack may name: the forms rule packs are checked against at load
(audit/rules/reach.py) cover what the probes write, so no valid rule is refused."""

import glob as globs

from audit.rules import reach
from audit.store import Store


def test_every_stored_setting_passes_the_rule_pack_check(every_probe):
    db, run_id, other = every_probe
    with Store(db, read_only=True) as s:
        rows = {(m, st) for r in (run_id, other)
                for m, st in s.metrics(r)[["metric", "setting"]].itertuples(index=False)}
    assert {m for m, _ in rows} >= {"sar_type1", "psr_at_tau", "fnmr", "accuracy", "inversion_rank1", "linf"}
    for metric, setting in sorted(rows):
        reach.check_setting(metric, globs.escape(setting))  # the stored text, read literally
