"""The run pipeline (inputs, embedding pass, parity, probes, resume, results); imports probes, rules and below."""

from audit.run.inputs import (Inputs, Inspection, inspect_model, load_inputs, resolve_dataset, sample_data,
                              sample_models)
from audit.run.pipeline import Cancelled, ProgressFn, check_config, run_audit, validate_config

__all__ = ["Inputs", "load_inputs", "resolve_dataset", "sample_data", "sample_models", "Inspection", "inspect_model",
           "Cancelled", "ProgressFn", "check_config", "run_audit", "validate_config"]
