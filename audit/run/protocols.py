"""A protocol file loaded and checked whole before anything runs (``run --protocol`` and campaigns).

:func:`audit.protocol.load_protocol` checks the file's form and the settings the run config bounds; what needs
the floors above it (probe names, condition names, the rule packs it pins) is checked here, so every problem in
a protocol is one line naming the protocol file and its field, never a command-line option the user did not give.
"""

from __future__ import annotations

from pathlib import Path

from audit.errors import ConfigError
from audit.protocol import Protocol, check_packs, load_protocol


def load_checked(path: str | Path) -> Protocol:
    """The protocol at ``path``, its probe and condition names checked as a run would check them."""
    proto = load_protocol(path)
    check_names(proto.source, proto.probes, proto.conditions)
    return proto


def check_names(source: str | Path, probe_names: list[str] | None, condition_names: list[str] | None) -> None:
    """Probe and condition names of a protocol or campaign file, checked as a run would check them, each bad one a
    one-line error naming the file and the field: never dropped from a run or a campaign's cells as if the model's
    kind could not run it, nor a failure of every cell."""
    from audit import conditions, probes

    probes.load_plugins()
    for i, name in enumerate(probe_names or []):
        try:
            probes.require([name])
        except ConfigError as exc:
            raise ConfigError(f"{source}: field 'probes.{i}': {exc}") from None
    for i, name in enumerate(condition_names or []):
        try:
            conditions.parse(name)
        except ConfigError as exc:
            raise ConfigError(f"{source}: field 'conditions.{i}': {exc}") from None


def packs_under(proto: Protocol, packs: list[str] | None) -> list[str] | None:
    """The rule packs a run under ``proto`` uses: ``packs``, or the protocol's own by default; a pack the
    protocol does not pin (a renamed lenient copy), or whose file differs from the one it pins, is refused."""
    from audit.rules.engine import load_packs

    packs = packs or list(proto.packs) or None
    if proto.packs and packs:
        check_packs(proto.record(), load_packs(packs), proto.source)
    return packs
