"""Model profiles: how to feed a model and what its outputs mean.

A profile lives next to the model as ``NAME.profile.yaml``. When there is none, one is
inferred from the graph and every inferred field is listed in ``guessed`` so the user
knows what to confirm (``faceaudit inspect --write-profile``).

Normalisation convention: ``mean`` and ``std`` are on the 0-255 scale, applied after the
colour order is set: ``x' = (x - mean) / std``. ArcFace-style models use 127.5/127.5
(or 128); ImageNet models use mean (123.675, 116.28, 103.53), std (58.395, 57.12, 57.375).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from audit.atomic import write_atomic
from audit.errors import ProfileError, first_error
from audit.models.onnx_file import ModelInfo

PROFILE_SUFFIX = ".profile.yaml"
CONTRADICTS = "{where}: field '{field}' = {value!r} contradicts the graph: {why}"
DEFAULT_MAX_INPUT_PIXELS = 1024 * 1024
"""Largest model input (height x width) accepted unless FACEAUDIT_MAX_INPUT_PIXELS says otherwise: every
probe holds whole batches of inputs in memory, so a 30000x30000 input would exhaust it mid-run."""


def max_input_pixels() -> int:
    """The input-size limit (``FACEAUDIT_MAX_INPUT_PIXELS``, default 1024 x 1024)."""
    raw = os.environ.get("FACEAUDIT_MAX_INPUT_PIXELS", "")
    try:
        return int(raw) if raw.strip() else DEFAULT_MAX_INPUT_PIXELS
    except ValueError:
        raise ProfileError(f"FACEAUDIT_MAX_INPUT_PIXELS: expected a whole number of pixels, got {raw!r}") from None


class InputSpec(BaseModel):
    """How images enter the model."""

    model_config = ConfigDict(extra="forbid")
    name: str
    """Graph input name."""
    size: tuple[int, int] = (112, 112)
    """Height, width in pixels."""
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    color: Literal["RGB", "BGR"] = "RGB"
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    """Per-channel mean on the 0-255 scale, in the model's colour order."""
    std: tuple[float, float, float] = (127.5, 127.5, 127.5)
    """Per-channel divisor on the 0-255 scale."""

    @model_validator(mode="after")
    def _positive(self) -> "InputSpec":
        if min(self.size) < 8:
            raise ValueError("size must be at least 8x8 pixels")
        if not all(math.isfinite(v) for v in (*self.mean, *self.std)):
            raise ValueError("mean and std must be finite numbers")
        if min(self.std) <= 0:
            raise ValueError("std must be positive")
        return self


class Head(BaseModel):
    """One attribute output of an ``attributes`` model."""

    model_config = ConfigDict(extra="forbid")
    attribute: str
    """Dataset attribute this head predicts (``sex``, ``skin_tone``, ``age``...)."""
    output: str
    """Graph output name."""
    type: Literal["categorical", "regression"]
    labels: list[str] | None = None
    """Class labels in output order (categorical heads)."""
    scale: float = Field(1.0, allow_inf_nan=False)
    """Regression value = raw * scale + offset."""
    offset: float = Field(0.0, allow_inf_nan=False)

    @field_validator("attribute")
    @classmethod
    def _judged_name(cls, v: str) -> str:
        """A head for ``gender`` reads the attribute a dataset's ``gender`` column is read as (``sex``:
        :func:`audit.data.manifest.judged_name`), so the renaming of the column never leaves a head unscored."""
        from audit.data.manifest import judged_name

        return judged_name(v)

    @model_validator(mode="after")
    def _labels(self) -> "Head":
        if self.type == "categorical" and not self.labels:
            raise ValueError(f"head '{self.attribute}': categorical heads need labels")
        twice = sorted({x for x in self.labels or [] if (self.labels or []).count(x) > 1})
        if twice:  # two outputs with one name: every row of that class would be scored against the first only
            raise ValueError(f"head '{self.attribute}': label(s) {twice} given twice; give each output its own label")
        return self

    def uncovered(self, values) -> list[str]:
        """Values of the dataset's attribute column (non-empty ones, as text) that no label of this categorical
        head names: the probes would drop those rows silently (none for a regression head)."""
        if self.type != "categorical":
            return []
        return sorted({str(v) for v in values if v is not None and v == v} - set(self.labels or []))


class Profile(BaseModel):
    """Everything faceaudit needs to know to run a model."""

    model_config = ConfigDict(extra="forbid")
    name: str
    kind: Literal["embedding", "attributes"]
    input: InputSpec
    embedding_output: str | None = None
    """Graph output holding the embedding (``embedding`` models)."""
    heads: list[Head] = Field(default_factory=list)
    """Attribute heads (``attributes`` models)."""
    guessed: list[str] = Field(default_factory=list)
    """Fields inferred from the graph rather than stated by a person."""

    @field_validator("guessed")
    @classmethod
    def _guessed_fields(cls, v: list[str]) -> list[str]:
        known = {f for f in cls.model_fields if f not in ("guessed", "input", "name")} | \
            {f"input.{f}" for f in InputSpec.model_fields}
        bad = [g for g in v if g not in known]
        if bad:
            raise ValueError(f"{bad[0]!r} is no profile field (fields: {', '.join(sorted(known))})")
        return v

    @model_validator(mode="after")
    def _kind_fields(self) -> "Profile":
        if self.kind == "embedding" and not self.embedding_output:
            raise ValueError("embedding profiles need 'embedding_output'")
        if self.kind == "attributes" and not self.heads:
            raise ValueError("attributes profiles need at least one entry in 'heads'")
        return self

    @field_validator("heads")
    @classmethod
    def _one_head_each(cls, heads: list[Head]) -> list[Head]:
        attrs = [h.attribute for h in heads]
        twice = sorted({a for a in attrs if attrs.count(a) > 1})
        if twice:  # the second head's output would replace the first's
            raise ValueError(f"attribute(s) {twice} have more than one head; give each attribute one head")
        return heads

    def content_hash(self) -> str:
        """SHA-256 of everything in the profile that changes a number (its name and its list of unconfirmed guesses do
        not): what a run records as its profile, and part of the key of its cached embeddings."""
        import hashlib

        return hashlib.sha256(self.model_dump_json(exclude={"name", "guessed"}).encode()).hexdigest()

    def head(self, attribute: str) -> Head | None:
        return next((h for h in self.heads if h.attribute == attribute), None)


def profile_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name.removesuffix(".onnx") + PROFILE_SUFFIX)


def load_profile(path: Path, cls: type[BaseModel] | None = None):
    """Read a profile YAML (a model :class:`Profile`, or ``cls`` such as a detector profile); errors name the
    file and field."""
    from audit.yamlio import read_yaml

    data = read_yaml(path, ProfileError, "cannot read the profile", utf8_hint="; save the profile as UTF-8")
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: a profile must be a mapping of fields")
    try:
        return (cls or Profile).model_validate(data)
    except ValidationError as exc:
        field, msg = first_error(exc)
        raise ProfileError(f"{path}: field '{field or '(profile)'}': {msg}") from None


def save_profile(profile: Profile, path: Path) -> None:
    data = profile.model_dump(mode="json", exclude_none=True)
    header = "# faceaudit model profile. Fields listed under 'guessed' were inferred: confirm them,\n"
    header += "# then remove them from 'guessed'. mean/std are on the 0-255 scale.\n"
    # Through a temporary file: a full disk must not leave a truncated profile that later loads as valid.
    text = header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    try:
        write_atomic(path, text.encode("utf-8"))
    except OSError as exc:
        raise ProfileError(f"{path}: cannot write the profile: {exc.strerror or exc}") from None


def infer_profile(info: ModelInfo) -> Profile:
    """Guess a profile from the graph; every guess is named in ``guessed``."""
    if not info.inputs:
        raise ProfileError(f"{info.path}: the graph has no inputs")
    guessed = ["input.color", "input.mean", "input.std"]
    inp = info.inputs[0]
    shape = inp.shape
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    size = (112, 112)
    if len(shape) == 4:
        if shape[1] == 3:
            layout, hw = "NCHW", shape[2:4]
        elif shape[3] == 3:
            layout, hw = "NHWC", shape[1:3]
        else:
            guessed.append("input.layout")
            hw = shape[2:4]
        if all(isinstance(d, int) for d in hw):
            size = (int(hw[0]), int(hw[1]))
        else:
            guessed.append("input.size")
    else:
        raise ProfileError(f"{info.path}: input '{inp.name}' has shape {list(shape)}; expected 4 dimensions (image batch)")
    # Producer-declared normalisation (our own sample models write these keys).
    md = info.metadata
    mean = tuple(float(v) for v in md["faceaudit.mean"].split(",")) if "faceaudit.mean" in md else (127.5,) * 3
    std = tuple(float(v) for v in md["faceaudit.std"].split(",")) if "faceaudit.std" in md else (127.5,) * 3
    if "faceaudit.mean" in md:
        guessed = [g for g in guessed if g not in ("input.mean", "input.std")]
    spec = InputSpec(name=inp.name, size=size, layout=layout, mean=mean, std=std)

    def last_dim(t) -> int | None:
        d = t.shape[-1] if t.shape else None
        return d if isinstance(d, int) else None

    if len(info.outputs) == 1 and (last_dim(info.outputs[0]) or 0) >= 16:
        guessed.append("kind")
        return Profile(name=info.name, kind="embedding", input=spec,
                       embedding_output=info.outputs[0].name, guessed=guessed)
    heads = []
    for out in info.outputs:
        k = last_dim(out) or 1
        if k > 1:
            heads.append(Head(attribute=out.name, output=out.name, type="categorical",
                              labels=[str(i) for i in range(k)]))
        else:
            heads.append(Head(attribute=out.name, output=out.name, type="regression"))
    guessed += ["kind", "heads"]
    return Profile(name=info.name, kind="attributes", input=spec, heads=heads, guessed=guessed)


def check_profile(profile: Profile, info: ModelInfo, where: str) -> None:
    """Raise :class:`ProfileError` naming the first field that contradicts the graph."""
    inp = info.input(profile.input.name)
    if inp is None:
        names = [i.name for i in info.inputs]
        raise ProfileError(CONTRADICTS.format(where=where, field="input.name", value=profile.input.name,
                                              why=f"graph inputs are {names}"))
    if len(inp.shape) != 4:
        raise ProfileError(CONTRADICTS.format(where=where, field="input.name", value=inp.name,
                                              why=f"input has shape {list(inp.shape)}, not 4-D"))
    # faceaudit feeds one input, float32 pixels after the profile's normalisation: a graph wanting other types or
    # further inputs passed inspect and failed in the run's first inference (a review of the input handling)
    if inp.dtype not in ("FLOAT", "UNDEFINED"):
        raise ProfileError(CONTRADICTS.format(where=where, field="input.name", value=inp.name,
                                              why=f"the input takes {inp.dtype.lower()} values; faceaudit feeds float32 "
                                                  "pixels (export the model with a float input)"))
    others = [i.name for i in info.inputs if i.name != inp.name]
    if others:
        raise ProfileError(CONTRADICTS.format(where=where, field="input.name", value=inp.name,
                                              why=f"the graph needs further inputs {others[:5]}, which faceaudit cannot "
                                                  "feed (export the model with the face image as its only input)"))
    c_axis, hw_axes = (1, (2, 3)) if profile.input.layout == "NCHW" else (3, (1, 2))
    if isinstance(inp.shape[c_axis], int) and inp.shape[c_axis] != 3:
        raise ProfileError(CONTRADICTS.format(where=where, field="input.layout", value=profile.input.layout,
                                              why=f"dimension {c_axis} of {list(inp.shape)} is not 3 channels"))
    for axis, want in zip(hw_axes, profile.input.size):
        got = inp.shape[axis]
        if isinstance(got, int) and got != want:
            raise ProfileError(CONTRADICTS.format(where=where, field="input.size", value=list(profile.input.size),
                                                  why=f"graph input is {list(inp.shape)}"))
    h, w = profile.input.size
    if h * w > max_input_pixels():
        raise ProfileError(f"{where}: model input {h}x{w} ({h * w} pixels) is larger than the limit of "
                           f"{max_input_pixels()} pixels; set FACEAUDIT_MAX_INPUT_PIXELS to allow it")
    outputs = [o.name for o in info.outputs]
    wanted = [profile.embedding_output] if profile.kind == "embedding" else [h.output for h in profile.heads]
    for name in wanted:
        if name not in outputs:
            field = "embedding_output" if profile.kind == "embedding" else "heads.output"
            raise ProfileError(CONTRADICTS.format(where=where, field=field, value=name,
                                                  why=f"graph outputs are {outputs}"))
    _check_output_shapes(profile, info, where)
    for h in profile.heads:
        out = info.output(h.output)
        k = out.shape[-1] if out and out.shape else None
        if h.type == "categorical" and isinstance(k, int) and k != len(h.labels or []):
            raise ProfileError(CONTRADICTS.format(where=where, field=f"heads[{h.attribute}].labels",
                                                  value=h.labels, why=f"output '{h.output}' has {k} classes"))


def _check_output_shapes(profile: Profile, info: ModelInfo, where: str) -> None:
    """Refuse at inspect what would otherwise fail at reshape time deep inside a probe: an embedding must be
    (batch, D); a categorical head (batch, K); a regression head (batch,) or (batch, 1). Undeclared shapes
    (no dimensions in the graph) are left to the run's own checks."""
    if profile.kind == "embedding":
        out = info.output(profile.embedding_output)
        if out.shape and len(out.shape) != 2:
            raise ProfileError(CONTRADICTS.format(where=where, field="embedding_output", value=out.name,
                                                  why=f"output shape {list(out.shape)} is not (batch, D)"))
        return
    for head in profile.heads:
        out = info.output(head.output)
        dims = out.shape
        if head.type == "categorical":
            ok = len(dims) == 2
        else:
            ok = len(dims) == 1 or (len(dims) == 2 and (dims[1] == 1 or not isinstance(dims[1], int)))
        if dims and not ok:
            want = "(batch, K)" if head.type == "categorical" else "(batch,) or (batch, 1)"
            raise ProfileError(CONTRADICTS.format(where=where, field=f"heads[{head.attribute}].output", value=out.name,
                                                  why=f"output shape {list(out.shape)} is not {want}"))


def resolve_profile(info: ModelInfo, explicit: Path | None = None) -> tuple[Profile, bool]:
    """The profile for a model: the explicit file, the sidecar YAML, or an inferred one.

    Returns the profile and whether it came from a file (False = inferred).
    """
    path = explicit or profile_path(info.path)
    if path.is_file():
        prof = load_profile(path)
        check_profile(prof, info, str(path))
        return prof, True
    if explicit is not None:
        raise ProfileError(f"{explicit}: is a folder; give the profile YAML file" if Path(explicit).is_dir()
                           else f"{explicit}: profile file not found")
    try:
        prof = infer_profile(info)
    except (ValidationError, ValueError) as exc:  # graph or vendor metadata no profile can describe
        why = "; ".join(first_error(exc)) if isinstance(exc, ValidationError) else str(exc)
        raise ProfileError(f"{info.path}: cannot infer a profile from the graph ({why}); write "
                           f"{profile_path(info.path).name} by hand") from None
    check_profile(prof, info, f"{info.path} (inferred profile)")
    return prof, False
