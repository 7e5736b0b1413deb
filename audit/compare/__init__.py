"""Comparing audited models: comparability of runs, paired person-bootstrap differences, rankings (the report
only renders them); imports probes, metrics, config and below, never the report."""

from audit.compare.comparability import blocking, differences, probe_comparability, run_fields
from audit.compare.paired import compare_runs, directions_of

__all__ = ["blocking", "compare_runs", "differences", "directions_of", "probe_comparability", "run_fields"]
