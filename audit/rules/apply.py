"""Rule packs applied to a stored run: judged from the store alone, and (``evaluate_rules``) written back,
replacing each pack's earlier findings for that run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from audit.paths import require_store
from audit.protocol import check_packs
from audit.rules.engine import evaluate, load_packs
from audit.store import Store


def evaluate_rules(run_ref: str, db: str | Path, packs: list[str] | None = None) -> pd.DataFrame:
    """Apply rule packs (ids or paths; default every pack under rules/) to a stored run.

    Findings replace earlier ones of the same pack for that run. Returns the findings.
    """
    require_store(db)
    with Store(db) as store:
        run_id = store.resolve_run(run_ref)
        loaded = run_packs(store.run(run_id), packs)
        frames = judge_stored(store, run_id, loaded)
        with store.transaction():
            for pack, df in zip(loaded, frames):
                store.delete_findings(run_id, pack.pack)
                store.write("findings", df)
        return store.findings(run_id)


def run_packs(run: dict, packs: list[str] | None = None) -> list:
    """The loaded packs a stored run is judged with: ``packs`` (ids or files; default every shipped pack or, for a
    run under a protocol, the packs it pins), each checked against the protocol's pins (a pack it does not pin,
    or whose file differs, is refused)."""
    pinned = (run.get("config") or {}).get("protocol")
    if pinned and not packs:
        packs = list(pinned.get("packs") or {}) or None  # a protocol's packs are the default
    loaded = load_packs(packs)
    if pinned:
        check_packs(pinned, loaded)
    return loaded


def judge_stored(store: Store, run_id: str, packs: list) -> list[pd.DataFrame]:
    """Findings of each loaded pack on a stored run's metrics and completed probes; nothing is written."""
    metrics = store.metrics(run_id)
    probes_run = set(store.probes(run_id).query("status == 'completed'")["probe"])
    return [evaluate(pack, run_id, metrics, probes_run) for pack in packs]
