"""The house's import rule, kept by a test: imports run one way, down, and never in a circle.

DESIGN.md's floors, top to bottom: cli/tui -> api -> run, executors, compare, report, evidence -> probes,
rules -> models, conditions, metrics, intake -> data, synth, store -> records, config, errors (and the
other one-file helpers beside them). Every ``import`` in ``audit/`` is read with :mod:`ast`, lazy ones
inside functions too, since they tie the files together just the same.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
AUDIT = ROOT / "audit"

FLOORS = [
    {"console", "cli", "cli_options", "cli_output", "tui"},
    {"api"},
    {"run", "executors", "compare", "report", "evidence"},
    {"probes", "rules"},
    {"models", "conditions", "metrics", "intake"},
    {"data", "synth", "store"},
    {"records", "config", "errors", "atomic", "csvout", "convergence", "devices", "paths", "protocol", "resources", "seeding",
     "threads", "yamlio"},
]
"""Rooms (a package or a one-file module under ``audit/``) by floor, top first; a room may import its own
floor's rooms and any floor below, never one above."""

FLOOR_OF = {room: depth for depth, rooms in enumerate(FLOORS) for room in rooms}

SHARED_RECORDS = {"MetricRecord", "QualityIssue", "FAILURES"}
"""Record types several floors make: they live in ``audit/records.py``, below data, intake and probes."""


def _module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _file_of(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _imports(path: Path) -> set[str]:
    """The ``audit`` modules a file imports (``from pkg import sub`` counts as the submodule when it is one)."""
    out = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_of(path) if path.name == "__init__.py" else _module_of(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "audit"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this file's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            if base.split(".")[0] != "audit":
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.add(sub if _file_of(sub) is not None else base)
    return out


def _graph() -> dict[str, set[str]]:
    files = {_module_of(p): p for p in AUDIT.rglob("*.py")}
    return {m: {t for t in _imports(p) if t in files and t != m} for m, p in files.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        top = stack.pop()
                        on.discard(top)
                        comp.append(top)
                        if top == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
            elif child not in index:
                index[child] = low[child] = counter[0]
                counter[0] += 1
                stack.append(child)
                on.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on:
                low[node] = min(low[node], index[child])
    return out


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "audit"


def test_every_room_has_a_floor():
    rooms = {_room(m) for m in _graph()} - {"audit"}
    assert rooms <= set(FLOOR_OF), f"rooms without a floor in FLOORS: {sorted(rooms - set(FLOOR_OF))}"


def test_no_import_cycles_between_files():
    assert _cycles(_graph()) == []


def test_no_import_cycles_between_rooms():
    graph = _graph()
    rooms: dict[str, set[str]] = {}
    for src, targets in graph.items():
        rooms.setdefault(_room(src), set()).update(_room(t) for t in targets if _room(t) != _room(src))
    rooms.pop("audit", None)
    assert _cycles({r: t - {"audit"} for r, t in rooms.items()}) == []


def test_imports_run_down():
    up = sorted(f"{src} -> {t}" for src, targets in _graph().items() for t in targets
                if src != "audit" and _room(src) in FLOOR_OF and _room(t) in FLOOR_OF
                and FLOOR_OF[_room(t)] < FLOOR_OF[_room(src)])
    assert up == []


@pytest.mark.parametrize("name", sorted(SHARED_RECORDS))
def test_shared_records_live_below_data_intake_and_probes(name):
    """Defined once, in ``audit/records.py``; the floors that make them import them from there (or from a
    module that re-exports them), never from a floor above their own."""
    defined = [p.relative_to(ROOT).as_posix() for p in AUDIT.rglob("*.py")
               for node in ast.parse(p.read_text(encoding="utf-8")).body
               if (isinstance(node, ast.ClassDef) and node.name == name)
               or (isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets))]
    assert defined == ["audit/records.py"]
    assert FLOOR_OF["records"] > max(FLOOR_OF[r] for r in ("data", "intake", "probes"))


def test_the_front_door_is_thin():
    """``audit/api.py`` validates and delegates; the work lives in the rooms below it."""
    assert len((AUDIT / "api.py").read_text(encoding="utf-8").splitlines()) <= 250
