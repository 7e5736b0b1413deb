"""Packaging glue; the metadata lives in pyproject.toml.

The report templates, rule packs and sample models stay at the top level of the repository
(``templates/``, ``rules/``, ``protocols/``, ``sample_data/``). A (non-editable) build copies them into the wheel
as package data under ``audit/_data/``, where :mod:`audit.resources` finds them. An editable
install skips the copy: there :mod:`audit.resources` reads the source tree's folders.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
DATA = {  # top-level folder -> files shipped under audit/_data/<folder>/
    "templates": ["**/*"],
    "rules": ["*.yaml"],
    "protocols": ["*.yaml"],
    "sample_data": ["README.md", "models/*.onnx", "models/*.profile.yaml"],
}


def data_files():
    """(source, path relative to audit/_data) for every shipped file."""
    for folder, patterns in DATA.items():
        for pattern in patterns:
            for src in sorted(p for p in (HERE / folder).glob(pattern) if p.is_file() and "__pycache__" not in p.parts):
                yield src, Path(folder) / src.relative_to(HERE / folder)


class BuildPyWithData(build_py):
    def run(self):
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "audit" / "_data"
        shutil.rmtree(target, ignore_errors=True)  # no stale file from an earlier build
        files = list(data_files())
        if not any(rel.parts[0] == "rules" for _, rel in files):
            raise SystemExit(f"setup.py: no rule packs under {HERE / 'rules'}; building from an incomplete tree?")
        for src, rel in files:
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            self.copy_file(str(src), str(target / rel))

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if self.editable_mode:
            return outputs
        target = Path(self.build_lib) / "audit" / "_data"
        return outputs + [str(target / rel) for _, rel in data_files()]


setup(cmdclass={"build_py": BuildPyWithData})
