"""Probes and their registry (importing it registers the built-ins); imports models, conditions, metrics and below."""

from audit.probes import cloak, identity, inversion, leakage, membership  # noqa: F401  (registration side effect)
from audit.probes.base import (REGISTRY, Artifact, MetricRecord, ProbeContext, ProbeResult, conditions_read, get,
                               load_plugins, needs_embedding, register, require, supported, white_box)

__all__ = ["REGISTRY", "Artifact", "MetricRecord", "ProbeContext", "ProbeResult", "conditions_read", "get",
           "load_plugins", "needs_embedding", "register", "require", "supported", "white_box"]
