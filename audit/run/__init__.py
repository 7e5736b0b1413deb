"""The run pipeline (inputs, preprocessing check, embedding pass, parity, probes, resume, results); may import
probes, rules, models, conditions, metrics, intake, data, store, records, config and errors, never api, cli
or tui."""

from audit.run.inputs import (Inputs, Inspection, inspect_model, load_inputs, resolve_dataset, sample_data,
                              sample_models)
from audit.run.pipeline import Cancelled, ProgressFn, check_config, run_audit, validate_config

__all__ = ["Inputs", "load_inputs", "resolve_dataset", "sample_data", "sample_models", "Inspection", "inspect_model",
           "Cancelled", "ProgressFn", "check_config", "run_audit", "validate_config"]
