"""Protocols: one published file that pins what makes audits comparable.

A regulator publishes a protocol; every vendor's audit run under it is comparable by construction.

```yaml
protocol: sample-world-quick        # an id: letters, digits, - _ .
version: "1"
title: faceaudit sample world, quick preset
faceaudit: ">=0.1,<1"               # the tool versions it was written for (PEP 440 specifiers)
dataset: {recipe: sample, seed: 0, people: 300, images: 8}   # or {fingerprint: <SHA-256 of manifest + files>}
                                    # or {recipe: sample-membership, members: 200, nonmembers: 300, images: 4}
probes: [leakage, identity, inversion, cloak]   # run those the model's kind supports
conditions: [clean, mask:surgical, mask:cloth, mask:n95, sunglasses]
attributes: [sex, skin_tone, age]   # optional
preset: quick
overrides: {bootstrap: 200}         # optional: folds, cv_repeats, bootstrap, mlp_epochs, max_images, ...
seed: 0
attack_precision: float32           # optional: auto | float32 | bfloat16
cloak_eps: [8]
packs: {baseline: <SHA-256 of the pack file>, eu-ai-act: <SHA-256>}
helpers: {surrogates: [<SHA-256>], evaluator: <SHA-256>}   # optional: the helper models, by content
```

``run --protocol P.yaml`` takes every pinned setting from the file (an option given on the command
line that contradicts it is refused), checks the dataset, the packs, the helper models (when it names
``helpers``) and the tool version against it,
and stores the protocol's name, version and SHA-256 with the run (``config.protocol``), where reports,
exports and comparisons read it. Validated like campaign files: one line naming the file and field.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from audit.config import DETECTOR_SPECS, option_name
from audit.errors import ConfigError, first_error
from audit.yamlio import parse_yaml, read_bytes

SHA256 = r"^[0-9a-f]{64}$"
BUDGETS = ("folds", "cv_repeats", "bootstrap", "mlp_epochs", "max_images", "max_subjects", "max_images_per_subject",
           "inversion_queries", "synthetic_faces")
PINNED = ("probes", "conditions", "attributes", "preset", "seed", "attack_precision", "cloak_eps", "detector",
          "min_face_confidence")
"""Config fields a protocol sets (with the budget ``overrides``); the command line may not contradict them."""
HELPERS = ("evaluator", "attacker_model", "attribute_model", "surrogates", "reference_models")
"""Helper-model roles a protocol's ``helpers`` pins by content (as the run records them under ``inputs``); the
last two are lists, in the order given."""
LISTED = ("surrogates", "reference_models")


class DatasetPin(BaseModel):
    """The data a protocol is for: a fingerprint, or a synthetic recipe: the sample world (``sample``: seed,
    people, images) or the membership probe's planted control (``sample-membership``: members, nonmembers,
    images; its persons are the sample models' training persons and persons after them, so it has no seed of
    its own)."""

    model_config = ConfigDict(extra="forbid")
    fingerprint: str | None = Field(None, pattern=SHA256)
    """SHA-256 over the manifest and every image file (what ``inspect``/reports call the dataset fingerprint)."""
    recipe: Literal["sample", "sample-membership"] | None = None
    seed: int | None = None
    people: int | None = None
    images: int | None = None
    members: int | None = None
    nonmembers: int | None = None

    @model_validator(mode="after")
    def _one(self):
        if self.fingerprint is None and self.recipe is None:
            raise ValueError("give 'fingerprint', or 'recipe: sample' (with its seed, people, images) or "
                             "'recipe: sample-membership' (with its members, nonmembers, images), or both (a recipe "
                             "alone vouches for how the set was generated, not against a folder forged with its "
                             "recipe.json; a fingerprint pins the exact bytes)")
        other = ("members", "nonmembers") if self.recipe == "sample" else \
            ("seed", "people") if self.recipe == "sample-membership" else ()
        given = [k for k in other if getattr(self, k) is not None]
        if given:
            raise ValueError(f"'{given[0]}' is not a setting of recipe {self.recipe!r}")
        return self


class Protocol(BaseModel):
    model_config = ConfigDict(extra="forbid")
    protocol: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
    version: str = "1"
    title: str = ""
    description: str = ""
    faceaudit: str = ""
    """Tool versions the protocol holds for (PEP 440 specifiers, e.g. ``>=0.1,<1``); empty: any."""
    dataset: DatasetPin
    probes: list[str] = Field(min_length=1)
    conditions: list[str] = Field(min_length=1)
    attributes: list[str] | None = None
    preset: Literal["quick", "standard", "thorough"] = "quick"
    overrides: dict[str, int] = Field(default_factory=dict)
    seed: int = Field(0, ge=0, le=2**63 - 1)
    attack_precision: Literal["auto", "float32", "bfloat16"] = "auto"
    cloak_eps: list[float] = Field(default_factory=lambda: [8.0])
    detector: str = "auto"
    """How faces are found (as ``run --detector``): which faces a pinned dataset yields depends on it."""
    min_face_confidence: float = Field(0.9, ge=0, le=1, allow_inf_nan=False)
    packs: dict[str, str] = Field(default_factory=dict)
    """Pack id -> SHA-256 of the pack file the findings must come from."""
    helpers: dict[str, Any] | None = None
    """Helper-model role (:data:`HELPERS`) -> SHA-256 of its ONNX file (``surrogates``, ``reference_models``: a list,
    in order). Given, it pins every role: a run under the protocol uses exactly these files and no helper it does not
    name (an inversion judged by another evaluator, or cloaks transferred from other surrogates, are other numbers
    under the same name; ``helpers: {}`` pins none at all). Absent: helper models are not pinned (a comparison still
    names those that differ)."""
    sha256: str = ""
    source: str = ""

    @field_validator("faceaudit")
    @classmethod
    def _spec(cls, v: str) -> str:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            SpecifierSet(v)
        except InvalidSpecifier:
            raise ValueError(f"not a version range: {v!r} (write e.g. '>=0.1,<1')") from None
        return v

    @field_validator("overrides")
    @classmethod
    def _overrides(cls, v: dict[str, int]) -> dict[str, int]:
        bad = sorted(set(v) - set(BUDGETS))
        if bad:
            raise ValueError(f"unknown budget(s) {bad}; allowed: {list(BUDGETS)}")
        return v

    @field_validator("packs")
    @classmethod
    def _packs(cls, v: dict[str, str]) -> dict[str, str]:
        import re

        bad = [k for k, h in v.items() if not re.match(SHA256, str(h))]
        if bad:
            raise ValueError(f"pack {bad[0]!r}: give the SHA-256 of the pack file (64 hex digits)")
        return v

    @field_validator("helpers")
    @classmethod
    def _helpers(cls, v: dict | None) -> dict | None:
        import re

        for role, pin in (v or {}).items():
            if role not in HELPERS:
                raise ValueError(f"unknown helper role {role!r}; allowed: {list(HELPERS)}")
            if (role in LISTED) != isinstance(pin, list) or not isinstance(pin, (str, list)):
                raise ValueError(f"{role!r}: give {'a list of SHA-256s' if role in LISTED else 'one SHA-256'} (leave "
                                 "a role out to pin it to none)")
            if not all(isinstance(h, str) and re.match(SHA256, h) for h in (pin if isinstance(pin, list) else [pin])):
                raise ValueError(f"{role!r}: give the model's sha256 as `faceaudit inspect` prints it (64 hex digits: "
                                 "the ONNX file's, or with external-data weights that of its files' checksums)")
        return v

    def record(self) -> dict:
        """What a run stores of its protocol (``config.protocol``): enough to check the run against it later (the
        helper pins only when the protocol has them, so records of protocols without are as they were)."""
        return {"name": self.protocol, "version": self.version, "sha256": self.sha256,
                "dataset": self.dataset.model_dump(exclude_none=True), "faceaudit": self.faceaudit,
                "packs": dict(sorted(self.packs.items())),
                **({"helpers": dict(sorted(self.helpers.items()))} if self.helpers is not None else {})}

    def fields(self) -> dict:
        """The config fields the protocol sets."""
        out = {k: getattr(self, k) for k in PINNED}
        return {**out, **self.overrides, "protocol": self.record()}


def load_protocol(path: str | Path) -> Protocol:
    """Read and validate a protocol file; every problem is one line naming the file and field."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; give a protocol YAML file")
    raw = read_bytes(path, ConfigError, missing="protocol file")
    data = parse_yaml(raw, path, ConfigError)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a protocol is a mapping with 'protocol', 'dataset', 'probes', 'conditions', ...")
    try:
        proto = Protocol.model_validate({**data, "sha256": hashlib.sha256(raw).hexdigest(), "source": str(path)})
    except ValidationError as exc:
        field, msg = first_error(exc)
        raise ConfigError(f"{path}: field '{field}': {msg}") from None
    from audit.config import AuditConfig

    try:  # the bounds a run's config puts on what the protocol sets (bootstrap >= 20, cloak_eps >= 0, ...)
        settings = {k: v for k, v in proto.fields().items() if k != "protocol"}
        AuditConfig.model_validate({**settings, "model": path})  # the model is the run's, not the protocol's
    except ValidationError as exc:
        field, msg = first_error(exc)
        field = f"overrides.{field}" if field in BUDGETS else field
        raise ConfigError(f"{path}: field '{field}': {msg}") from None
    if proto.detector not in DETECTOR_SPECS:  # a detector file: as the protocol file names it, not the shell's folder
        where = Path(proto.detector)
        proto.detector = str(where if where.is_absolute() else (path.parent / where).resolve())
    return proto


def _pinned_value(key: str, value):
    """A setting as compared with the protocol's: a detector file by its resolved path (a relative one from here)."""
    if key == "detector" and isinstance(value, str) and value not in DETECTOR_SPECS:
        return str(Path(value).resolve())
    return value


def apply(protocol: Protocol, fields: dict, explicit: set[str], where=lambda key: f"--{key.replace('_', '-')}") -> dict:
    """``fields`` (config fields from the command line or a campaign) with the protocol's settings in force;
    a setting given explicitly that contradicts the protocol is refused, naming both values (``where`` names
    the setting as the user gave it: a command-line option, or a campaign file's field)."""
    pinned = protocol.fields()
    from audit.config import PRESETS

    for key in sorted(explicit & (set(BUDGETS) - set(pinned))):
        # A budget the protocol leaves to its preset is the preset's: a weaker attacker (fewer queries, folds,
        # resamples) under the protocol's name would be a run its name does not describe (a review of the comparison)
        want = PRESETS[protocol.preset].get(key)
        if key in fields and _norm(fields[key]) != _norm(want):
            raise ConfigError(f"{where(key)} {fields[key]!r} contradicts protocol {protocol.protocol!r} "
                              f"({protocol.source}), whose preset {protocol.preset} sets {key} = {want!r} (a protocol "
                              "changes a budget only through its own overrides); leave it out")
    for key in sorted(explicit & set(pinned)):
        if key in fields and _norm(_pinned_value(key, fields[key])) != _norm(pinned[key]):
            named = "" if key in protocol.model_fields_set else " (its default: the protocol file names none)"
            raise ConfigError(f"{where(key)} {fields[key]!r} contradicts protocol {protocol.protocol!r} "
                              f"({protocol.source}), which pins {key} = {pinned[key]!r}{named}; leave it out")
    return {**fields, **pinned}


def _norm(v):
    return json.dumps(v, sort_keys=True, default=str)


def check_tool(record: dict, version: str) -> None:
    """Refuse a run when this faceaudit version is outside the protocol's range."""
    from packaging.specifiers import SpecifierSet

    spec = record.get("faceaudit") or ""
    if spec and version not in SpecifierSet(spec, prereleases=True):
        raise ConfigError(f"protocol {record['name']!r} is for faceaudit {spec}; this is faceaudit {version}")


def check_dataset(record: dict, fingerprint: str, recipe: dict | None) -> None:
    """Refuse a dataset other than the one the protocol pins (by fingerprint, or by the sample world's recipe)."""
    pin = record.get("dataset") or {}
    if pin.get("fingerprint") and pin["fingerprint"] != fingerprint:
        raise ConfigError(f"protocol {record['name']!r} pins the dataset with fingerprint {pin['fingerprint']}; "
                          f"this dataset's is {fingerprint}")
    if pin.get("recipe"):
        membership = pin["recipe"] == "sample-membership"
        keys = ("members", "nonmembers", "images") if membership else ("seed", "people", "images")
        what = "the membership sample set" if membership else "the sample world"
        want = {k: pin[k] for k in keys if pin.get(k) is not None}
        if not membership:  # the sample world is the evaluation split; the generator's training split is another set
            want["split"] = "eval"
        got = {k: (recipe or {}).get(k, "eval" if k == "split" else None) for k in want}
        if recipe is None or bool(recipe.get("membership")) != membership:
            kind = "not a synthetic set" if recipe is None else \
                "the membership sample set" if recipe.get("membership") else "the sample world"
            raise ConfigError(f"protocol {record['name']!r} pins {what} {want}; this dataset is {kind}")
        if got != want:
            raise ConfigError(f"protocol {record['name']!r} pins {what} {want}; this dataset is {what} {got}")


def check_helpers(record: dict, hashes: dict) -> None:
    """Refuse helper models other than those the protocol pins (when it has ``helpers``): ``hashes`` are the run's
    input content hashes (:func:`audit.run.inputs.content_hashes`), a role it does not name must be unused."""
    want = record.get("helpers")
    if want is None:
        return

    def said(pin) -> str:
        if not pin:
            return "none"
        return (f"the file with SHA-256 {pin}" if isinstance(pin, str) else
                f"{len(pin)} file(s) with SHA-256 {', '.join(pin)}" + (" in that order" if len(pin) > 1 else ""))

    for role in HELPERS:
        empty = [] if role in LISTED else None
        pinned, given = want.get(role, empty), hashes.get(role) or empty
        if pinned != given:
            raise ConfigError(f"protocol {record['name']!r} pins {option_name(role)} {said(pinned)}; this run gives "
                              f"{said(given)}")


def check_packs(record: dict, packs, source: str | Path | None = None) -> None:
    """Refuse rule packs the protocol does not pin (when it pins any) and packs whose file differs from the one it
    pins (``packs``: loaded Pack objects). ``source``: the protocol file, named in the error (a stored run's record
    names the protocol by name and SHA-256)."""
    want = record.get("packs") or {}
    where = f"{source}: protocol {record['name']!r}" if source else \
        f"protocol {record['name']!r} (SHA-256 {record.get('sha256', '')})"
    for pack in packs:
        if want and pack.pack not in want:
            raise ConfigError(f"{where} pins the rule packs {', '.join(sorted(want))}; pack {pack.pack!r} "
                              f"({pack.source}) is not one of them; leave it out")
        if pack.pack in want and want[pack.pack] != pack.sha256:
            raise ConfigError(f"{where} pins pack {pack.pack!r} with SHA-256 {want[pack.pack]}; "
                              f"{pack.source} has {pack.sha256}")
