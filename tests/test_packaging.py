"""Packaging: a non-editable wheel carries templates, rule packs and sample models, and works on its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import audit
from audit import resources

ROOT = Path(__file__).resolve().parents[1]
# What a build reads (pyproject's readme included); copied so the build never touches the working tree.
BUILD_INPUTS = ["pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE", "audit", "templates", "rules",
                "protocols", "sample_data"]


def _shipped_sources() -> set[str]:
    """Paths (relative to audit/_data) of every file the wheel must carry."""
    files = {p for p in (ROOT / "templates").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    files |= set((ROOT / "rules").glob("*.yaml")) | set((ROOT / "protocols").glob("*.yaml"))
    files |= {p for p in (ROOT / "sample_data" / "models").iterdir() if p.suffix in (".onnx", ".yaml")}
    return {p.relative_to(ROOT).as_posix() for p in files}


def test_checkout_resources_are_the_top_level_folders():
    assert resources.templates_dir() == ROOT / "templates"
    assert resources.rules_dir() == ROOT / "rules"
    assert resources.sample_models_dir() == ROOT / "sample_data" / "models"
    assert (resources.templates_dir() / "report.html.j2").is_file()


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_source_tree(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in BUILD_INPUTS:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "_data"))
        else:
            shutil.copy2(path, src / name)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", tmp_path / "dist", src],
                   check=True, cwd=src)
    wheel, = (tmp_path / "dist").glob("faceaudit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = {f"audit/_data/{rel}" for rel in _shipped_sources()} - names
    missing |= {"audit/store/schema.sql", "audit/tui/app.tcss", "audit/evidence/results.schema.json",
                f"faceaudit-{audit.__version__}.dist-info/licenses/LICENSE"} - names
    assert not missing, f"not in the wheel: {sorted(missing)}"

    # Install next to, not into, the venv (its dependencies are already there) and use it from elsewhere.
    target, work = tmp_path / "site", tmp_path / "work"
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", target, wheel], check=True)
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "FACEAUDIT_"))}
    env.update(PYTHONPATH=str(target), PYTHONNOUSERSITE="1", FACEAUDIT_CACHE=str(work / "cache"),
               MPLCONFIGDIR=str(work / "mpl"), COLUMNS="200")

    def faceaudit(*args: str) -> str:
        res = subprocess.run([sys.executable, str(target / "bin" / "faceaudit"), *args], cwd=work, env=env,
                             capture_output=True, text=True)
        assert res.returncode == 0, f"faceaudit {' '.join(args)}:\n{res.stdout}\n{res.stderr}"
        return res.stdout

    where = subprocess.run(
        [sys.executable, "-c", "import audit, audit.api as a, audit.resources as r; print(audit.__file__); "
         "print(r.templates_dir()); print(r.rules_dir()); print(*a.sample_models(), sep='\\n')"],
        cwd=work, env=env, capture_output=True, text=True, check=True).stdout.split()
    data = target / "audit" / "_data"
    assert where[0] == str(target / "audit" / "__init__.py"), "audit was not imported from the installed wheel"
    assert where[1:3] == [str(data / "templates"), str(data / "rules")]
    assert [Path(p).name for p in where[3:]] == sorted(p.name for p in (ROOT / "sample_data" / "models").glob("*.onnx"))

    packs = faceaudit("rules", "list")
    assert packs.count(str(data / "rules")) == len(list((ROOT / "rules").glob("*.yaml")))
    model = data / "sample_data" / "models" / "fr-baseline.onnx"
    assert "fr-baseline" in faceaudit("inspect", str(model))
    faceaudit("sample-data", "--out", "data", "--people", "20", "--images", "4")
    faceaudit("run", "--model", str(model), "--data", "data", "--probes", "leakage,identity", "--conditions", "clean",
              "--attributes", "sex", "--preset", "quick", "--db", "audit.duckdb")
    faceaudit("report", "latest", "--db", "audit.duckdb", "--format", "html,pdf", "--out", "reports")
    html, = (work / "reports").glob("report-fr-baseline-*.html")
    pdf, = (work / "reports").glob("report-fr-baseline-*.pdf")
    assert "TAR" in html.read_text() and pdf.read_bytes().startswith(b"%PDF")
