"""Cells as Ray tasks: each worker runs its cell into a private scratch store and returns the run's
rows as Arrow tables; the head writes them into the one shared store as results arrive.

Ray is started with usage statistics and the dashboard off: faceaudit makes no network request
of its own. ``address`` joins an existing cluster (``ray start --head`` on the head node, then
``--address HOST:6379``); without it a local Ray instance is started.
"""

from __future__ import annotations

import os
from typing import Iterable, Iterator

from audit.errors import ConfigError
from audit.executors.base import Cell, CellProgress, CellResult, cell_error, stored_runs


def _run_cell(config_json: str, label: str) -> dict:
    """Runs on a Ray worker: the cell into a scratch store; returns {run_id, error, tables}."""
    import tempfile

    from audit.config import AuditConfig
    from audit.run import run_audit
    from audit.store.transfer import export_run

    config = AuditConfig.model_validate_json(config_json)
    with tempfile.TemporaryDirectory(prefix="faceaudit-cell-") as tmp:
        db = os.path.join(tmp, "cell.duckdb")
        try:
            run_id = run_audit(config, db)
        except Exception as exc:  # a worker's crash is that cell's failure, not the campaign's
            # The run the failure left (stored 'failed', with the probes it finished) goes to the head, as a
            # local run leaves it in the store.
            failed = next(iter(stored_runs(db)), None)  # a scratch store holds this cell's run only
            return {"label": label, "run_id": failed, "error": cell_error(exc),
                    "tables": export_run(db, failed) if failed else {}}
        return {"label": label, "run_id": run_id, "error": None, "tables": export_run(db, run_id)}


class RayExecutor:
    name = "ray"
    in_process = False

    def __init__(self, address: str | None = None):
        self.address = address

    def _init(self):
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no phoning home
        if self.address and self.address != "auto":
            _check_reachable(self.address)  # before Ray is imported: a bad address prints nothing of Ray's
        try:
            import ray
        except ImportError:
            raise ConfigError("--executor ray: Ray is not installed (pip install 'faceaudit[ray]')") from None
        if ray.is_initialized():
            return ray
        try:
            if self.address:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            else:
                ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
        except Exception as exc:
            raise ConfigError(f"--address {self.address}: cannot reach a Ray cluster ("
                              f"{str(exc).splitlines()[0][:200]})" if self.address else
                              f"--executor ray: cannot start Ray ({str(exc).splitlines()[0][:200]})") from None
        return ray

    def run(self, cells: Iterable[Cell], db: str, progress: CellProgress) -> Iterator[CellResult]:
        ray = self._init()
        cells = list(cells)  # every cell is queued at once; each worker loads its own inputs
        by_label = {c.label: c for c in cells}
        remote = ray.remote(_run_cell)
        # torch's threads are the run's own setting (recorded with it): a cell takes one CPU and one thread unless
        # the campaign asks for more, and Ray reserves as many CPUs as the cell's torch will use (every core of the
        # node each, 16 cells on a 16-core node ran 256 threads; a review of the change)
        configs = [c.config.model_copy(update={"attack_threads": c.config.attack_threads or 1}) for c in cells]
        largest = max((n.get("Resources", {}).get("CPU", 0) for n in ray.nodes() if n.get("Alive")), default=0)
        asked = max((config.attack_threads for config in configs), default=1)
        if asked > largest:  # Ray would wait for such a node for ever
            raise ConfigError(f"attack_threads {asked}: no Ray node has that many CPUs (the largest has {largest:g}); "
                              "ask for fewer")
        pending = {}
        for c, config in zip(cells, configs):
            gpus = 1 if config.device == "cuda" else 0
            ref = remote.options(num_gpus=gpus, num_cpus=config.attack_threads, max_retries=0).remote(
                config.model_dump_json(), c.label)
            pending[ref] = c
            progress(c.label, 0.0, "queued on Ray")
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            ref = done[0]
            cell = pending.pop(ref)
            try:
                out = ray.get(ref)
            except Exception as exc:  # the worker died mid-cell
                yield CellResult(cell, error=f"Ray worker failed: {_last_line(exc)}")
                continue
            yield CellResult(by_label[out["label"]], run_id=out["run_id"], error=out["error"], tables=out["tables"])


def _last_line(exc: BaseException) -> str:
    """The line of a Ray task error that says what went wrong (its last non-empty line), without colours."""
    import re

    lines = [re.sub(r"\x1b\[[0-9;]*m", "", ln).strip() for ln in str(exc).splitlines()]
    lines = [ln for ln in lines if ln]
    return (lines[-1] if lines else type(exc).__name__)[:300]


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
"""The HTTP/2 client preface and an empty SETTINGS frame: a Ray head (gRPC) answers with a SETTINGS frame."""


def _check_reachable(address: str, timeout: float = 3.0) -> None:
    """Ray waits a long time (minutes, warning every few seconds) for a head that does not answer or is not
    Ray; ask the port first and fail in one line: it must accept a connection within ``timeout`` seconds
    and answer the HTTP/2 preface as a gRPC server does (skipped with RAY_USE_TLS, whose handshake differs)."""
    import socket

    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--address {address}: expected HOST:PORT (e.g. 10.0.0.5:6379)")
    hint = "start one with 'ray start --head' or leave out --address for a local Ray"
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as conn:
            if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
                return
            conn.sendall(HTTP2_PREFACE)
            answer = b""
            while len(answer) < 9:
                chunk = conn.recv(9 - len(answer))
                if not chunk:
                    break
                answer += chunk
    except socket.timeout:
        raise ConfigError(f"--address {address}: no answer within {timeout:g} s (the port drops packets or the "
                          f"service is not Ray); {hint}") from None
    except OSError as exc:
        raise ConfigError(f"--address {address}: cannot reach a Ray cluster ({exc.strerror or exc}); {hint}") from None
    if len(answer) < 9 or answer[3] != 0x04:  # frame type 4 = SETTINGS
        raise ConfigError(f"--address {address}: the port answers but is not a Ray cluster (no gRPC/HTTP/2 "
                          f"handshake); give the head's GCS port (ray start --head prints it, default 6379)")
