"""Campaign files: a matrix of models x datasets run with one preset and seed into one store.

```yaml
campaign: vendor-eval-2026     # an id: letters, digits, - _ .
preset: quick
seed: 0
models: [models/vendor-a.onnx, models/]    # files, or folders (every .onnx inside)
datasets: [sample, data/eval-set]          # folders, manifests, 'sample' or 'sample-membership'
probes: [leakage, identity]                # optional; default: every probe the model's kind supports
conditions: [clean, mask:surgical]         # optional
attributes: [sex, skin_tone]               # optional
packs: [baseline, eu-ai-act]               # optional; default: every shipped pack (or the protocol's)
protocol: protocols/sample-world.yaml      # optional: a protocol file; its pinned settings apply to every cell
evaluator: models/judge.onnx               # optional helper models, as for 'faceaudit run'
surrogates: [models/public-fr.onnx]
reference_models: [models/other-fr.onnx]   # optional: the membership probe's reference models (--reference-model)
device: auto
attack_precision: auto                     # optional: auto | float32 | bfloat16 (as --attack-precision)
attack_threads: 2                          # optional: torch's threads per cell (as --attack-threads; default every
                                           # core locally, one per cell on Ray, which reserves that many CPUs a cell)
detector: auto                             # optional: auto | none | mtcnn | a detector .onnx (as --detector)
min_face_confidence: 0.9
```

Relative paths (models, datasets, helper models, detector, pack files) are relative to the campaign
file; a pack named without a suffix or folder is a shipped pack id. An entry listed twice under
another spelling (``../m/x.onnx`` and ``../m/../m/x.onnx``, a folder and its manifest) is refused;
two cells with the same content (a copied model file) run once. Validated like profiles and packs: every
problem is one line naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from audit.config import DETECTOR_SPECS
from audit.errors import ConfigError, RuleError, first_error
from audit.rules.engine import load_pack
from audit.run.inputs import SAMPLE_MEMBERSHIP
from audit.yamlio import read_yaml

SAMPLE_SETS = ("sample", SAMPLE_MEMBERSHIP)
"""Dataset entries that name a synthetic set rather than a path (as ``--data`` does)."""

class Campaign(BaseModel):
    model_config = ConfigDict(extra="forbid")
    campaign: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
    preset: Literal["quick", "standard", "thorough"] = "quick"
    seed: int = Field(0, ge=0, le=2**32 - 1)
    models: list[str] = Field(min_length=1)
    datasets: list[str] = Field(min_length=1)
    probes: list[str] | None = None
    conditions: list[str] | None = None
    attributes: list[str] | None = None
    packs: list[str] | None = None
    evaluator: str | None = None
    attacker_model: str | None = None
    attribute_model: str | None = None
    surrogates: list[str] = Field(default_factory=list)
    reference_models: list[str] = Field(default_factory=list)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    attack_precision: Literal["auto", "float32", "bfloat16"] = "auto"
    attack_threads: int | None = Field(None, ge=1, le=1024)
    detector: str = "auto"
    min_face_confidence: float = Field(0.9, ge=0, le=1, allow_inf_nan=False)
    protocol: str | None = None
    """A protocol file (audit/protocol.py): its pinned settings apply to every cell."""
    pinned: dict = Field(default_factory=dict)
    """The protocol's settings, filled in by :func:`load_campaign` (not written in the file)."""
    source: str = ""

    @field_validator("models", "datasets", "surrogates", "reference_models")
    @classmethod
    def _no_empty(cls, v: list[str]) -> list[str]:
        if any(not str(x).strip() for x in v):
            raise ValueError("an empty entry")
        return v


def _resolve(base: Path, ref: str) -> Path:
    p = Path(ref).expanduser()
    return p if p.is_absolute() else base / p


def load_campaign(path: str | Path) -> Campaign:
    """Read and validate a campaign file; paths come back absolute, model folders expanded."""
    path = Path(path)
    data = read_yaml(path, ConfigError, missing="campaign file")  # duplicate keys refused, as in packs and profiles
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a campaign file is a mapping with 'campaign', 'models' and 'datasets'")
    internal = sorted({"pinned", "source"} & set(data))  # filled in below, never written in a file
    if internal:
        raise ConfigError(f"{path}: field '{internal[0]}': not a campaign field (faceaudit fills it in)")
    try:
        camp = Campaign.model_validate(data)
    except ValidationError as exc:
        field, msg = first_error(exc)
        raise ConfigError(f"{path}: field '{field}': {msg}") from None
    from audit.run.protocols import check_names

    check_names(path, camp.probes, camp.conditions)
    base = path.parent
    models: list[str] = []
    for i, ref in enumerate(camp.models):
        p = _resolve(base, ref)
        if p.is_dir():
            found = sorted(p.glob("*.onnx"))
            if not found:
                raise ConfigError(f"{path}: field 'models.{i}': folder {p} holds no .onnx file")
            models += [str(f) for f in found]
        elif p.is_file():
            models.append(str(p))
        else:
            raise ConfigError(f"{path}: field 'models.{i}': {p}: no such model file")
    datasets = []
    for i, ref in enumerate(camp.datasets):
        if ref in SAMPLE_SETS:
            datasets.append(ref)
            continue
        p = _resolve(base, ref)
        if not p.exists():
            raise ConfigError(f"{path}: field 'datasets.{i}': {p}: no such dataset")
        datasets.append(str(p))
    helpers = {}
    for key in ("evaluator", "attacker_model", "attribute_model"):
        ref = getattr(camp, key)
        if ref is not None:
            p = _resolve(base, ref)
            if not p.is_file():
                raise ConfigError(f"{path}: field '{key}': {p}: no such model file")
            helpers[key] = str(p)
    lists = {}
    for key in ("surrogates", "reference_models"):
        lists[key] = []
        for i, ref in enumerate(getattr(camp, key)):
            p = _resolve(base, ref)
            if not p.is_file():
                raise ConfigError(f"{path}: field '{key}.{i}': {p}: no such model file")
            lists[key].append(str(p))
    detector = camp.detector
    if detector not in DETECTOR_SPECS:
        p = _resolve(base, detector)
        if p.suffix.lower() != ".onnx" or not p.is_file():
            raise ConfigError(f"{path}: field 'detector': {detector!r} is not auto, none, mtcnn or an existing "
                              "detector .onnx file")
        helpers["detector"] = str(p)
    _refuse_twice(path, "models", models, [_identity(Path(m)) for m in models])
    _refuse_twice(path, "datasets", datasets,
                  [d if d in SAMPLE_SETS else _identity(Path(d), dataset=True) for d in datasets])
    # A pack given as a file (a suffix or a folder in it) is relative to the campaign file, like models and
    # datasets; a bare name is a shipped pack id.
    packs = None if camp.packs is None else [
        str(_resolve(base, ref)) if Path(ref).suffix or "/" in ref or "\\" in ref else ref for ref in camp.packs]
    for i, ref in enumerate(packs or []):
        try:
            load_pack(ref)
        except RuleError as exc:
            raise ConfigError(f"{path}: field 'packs.{i}': {exc}") from None
    pinned = {}
    if camp.protocol is not None:
        from audit.protocol import PINNED, apply
        from audit.run.protocols import load_checked, packs_under

        try:
            proto = load_checked(_resolve(base, camp.protocol))
        except ConfigError as exc:
            raise ConfigError(f"{path}: field 'protocol': {exc}") from None
        try:
            packs = packs_under(proto, packs)
        except ConfigError as exc:
            raise ConfigError(f"{path}: field 'packs': {exc}") from None
        given = {k: getattr(camp, k) for k in PINNED if hasattr(camp, k)}
        pinned = apply(proto, given, camp.model_fields_set, where=lambda k: f"{path}: field '{k}':")
    return camp.model_copy(update={"models": models, "datasets": datasets, **lists,
                                   "packs": packs, "pinned": pinned, "source": str(path), **helpers})


def _identity(p: Path, dataset: bool = False) -> str:
    """What a model or dataset entry is, whatever its spelling: the resolved file (``../m/x.onnx``,
    ``../m/../m/x.onnx`` and an absolute path are one); a dataset folder is the manifest it holds."""
    p = p.resolve()
    if dataset and p.is_dir():
        from audit.data.loaders import MANIFEST_NAMES

        p = next((p / n for n in MANIFEST_NAMES if (p / n).is_file()), p)
    return str(p)


def _refuse_twice(path: Path, field: str, entries: list[str], identities: list[str]) -> None:
    seen: dict[str, str] = {}
    for entry, ident in zip(entries, identities):
        if ident in seen:
            raise ConfigError(f"{path}: field '{field}': {entry} and {seen[ident]} are the same "
                              f"{field[:-1]} ({ident}); list it once")
        seen[ident] = entry
