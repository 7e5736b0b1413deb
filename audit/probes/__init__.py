"""Probes and their registry. Importing this package registers the built-in probes."""

from audit.probes import cloak, identity, inversion, leakage  # noqa: F401  (registration side effect)
from audit.probes.base import (REGISTRY, Artifact, MetricRecord, ProbeContext, ProbeResult, conditions_read, get,
                               load_plugins, needs_embedding, register, supported)

__all__ = ["REGISTRY", "Artifact", "MetricRecord", "ProbeContext", "ProbeResult", "conditions_read", "get",
           "load_plugins", "needs_embedding", "register", "supported"]
