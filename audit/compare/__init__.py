"""Comparing audited models: comparability of runs, paired person-bootstrap differences, rankings (the report
only renders them); imports probes, metrics, config and below, never the report."""

from audit.compare.comparability import (blocking, differences, preprocessing_outcome, probe_comparability,
                                        profiles_differing, run_fields)
from audit.compare.paired import VERDICT_KINDS, compare_runs, directions_of, model_verdicts, summarise

__all__ = ["VERDICT_KINDS", "blocking", "compare_runs", "differences", "directions_of", "model_verdicts",
           "preprocessing_outcome", "probe_comparability", "profiles_differing", "run_fields", "summarise"]
