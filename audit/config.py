"""Run configuration (pydantic) and presets.

Every random choice in a run derives from ``seed``; the config is stored with the run, so
the report's reproducibility appendix can show exactly what ran.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

import audit
from audit.devices import resolve_device, resolve_precision
from audit.errors import ConfigError, first_error

PRESETS: dict[str, dict] = {
    # folds: subject-grouped k for the leakage attackers (at least 5 everywhere: fewer folds train the
    # attacker on less data and understate leakage); cv_repeats: cross-validations with different split
    # seeds, pooled, so the intervals hold the split-to-split variance; bootstrap: resamples per CI;
    # mlp_epochs: mini-batch epochs (batch 128) for the MLP attacker; max_images: budget of images used (whole
    # persons, drawn with the run's seed, so a set with one image per person is not cut to a few hundred images);
    # max_subjects: an optional cap on persons (none in the presets); max_images_per_subject: most images of one
    # person (seeded draw), so a few persons with many photos do not dominate every per-image estimate
    # (audit/data/budget.py says why a cap and not equal person weights); inversion_queries: queries per victim
    # of the query-only inversion attacker; synthetic_faces: faces from faceaudit's own generator added to the
    # inversion decoder's training pairs (embedded through the audited model).
    "quick": {"folds": 5, "cv_repeats": 2, "bootstrap": 200, "mlp_epochs": 10, "max_images": 2400, "max_subjects": None,
              "max_images_per_subject": 10, "inversion_queries": 200, "synthetic_faces": 0},
    "standard": {"folds": 5, "cv_repeats": 3, "bootstrap": 1000, "mlp_epochs": 20, "max_images": 20000,
                 "max_subjects": None, "max_images_per_subject": 20, "inversion_queries": 1000,
                 "synthetic_faces": 2000},
    "thorough": {"folds": 5, "cv_repeats": 5, "bootstrap": 2000, "mlp_epochs": 40, "max_images": 1_000_000,
                 "max_subjects": None, "max_images_per_subject": 50, "inversion_queries": 5000,
                 "synthetic_faces": 10000},
}
QUERY_STEP = 20
"""Images the query-only inversion attacker submits per step (``audit.probes.query.POP``)."""
QUERY_FIRST_STEP = 1 + QUERY_STEP
"""The smallest query budget (per victim) that lets the query-only attacker take a step: the decoder's image plus one
step. A smaller budget would leave its result the decoder's image alone, so it is refused."""
QUERY_PASS_BUDGET = PRESETS["quick"]["inversion_queries"]
"""The smallest query budget on which a query-inversion result may pass a rule: the smallest preset's. A smaller
budget may still warn or fail (success within fewer queries is success), but it shows only that the attack did not
succeed within it, so a pass on it is not applicable (``audit.rules.engine``)."""


MAX_SEED = 2**63 - 1
"""Seeds are stored as BIGINT; a larger one could not be stored with the run it made."""
DETECTOR_SPECS = ("auto", "none", "mtcnn")
"""The named ``detector`` settings; anything else must be a detector ONNX file."""
DEFAULT_CONDITIONS = ["clean", "mask:surgical", "mask:cloth", "mask:n95", "sunglasses"]
DEFAULT_PROBES = ["leakage", "identity"]


class AuditConfig(BaseModel):
    """One audit: which model, which data, which probes under which conditions."""

    model_config = ConfigDict(extra="forbid")
    model: Path
    """ONNX file to audit."""
    profile: Path | None = None
    """Profile YAML; default: the sidecar ``NAME.profile.yaml`` or an inferred profile."""
    evaluator: Path | None = None
    """Independent FR model that judges inversion reconstructions (in addition to the target)."""
    attacker_model: Path | None = None
    """FR model on the attacker's side: adds an identity loss to the inversion decoder's training."""
    attribute_model: Path | None = None
    """Attribute model that reads sex / skin tone / age from inversion reconstructions."""
    surrogates: list[Path] = Field(default_factory=list)
    """Other ONNX models used as cloak surrogates (transfer setting)."""
    reference_models: list[Path] = Field(default_factory=list)
    """FR models that never saw the audited persons: the membership probe calibrates each person's scores
    against them (``--reference-model``, repeatable)."""
    cloak_eps: list[Annotated[float, Field(allow_inf_nan=False, ge=0, le=255)]] = Field(default_factory=lambda: [8.0])
    """L-infinity budgets (0-255 scale) of the cloak probe."""
    data: str = "sample"
    """Dataset folder or manifest, or ``sample`` for the embedded synthetic set."""
    labels: Path | None = None
    """Separate labels file (CSV/Parquet) joined to the dataset on ``image`` or ``subject``."""
    detector: str = "auto"
    """Where the five landmarks come from: ``auto`` (manifest landmarks when present, else the built-in
    detector), ``none`` (manifest landmarks, else pre-aligned faces), ``mtcnn``, or a detector ONNX path."""
    min_face_confidence: float = Field(0.9, ge=0, le=1, allow_inf_nan=False)
    """Detections below this confidence are failures to acquire (``low_confidence``)."""
    probes: list[str] = Field(default_factory=lambda: list(DEFAULT_PROBES))
    conditions: list[str] = Field(default_factory=lambda: list(DEFAULT_CONDITIONS))
    attributes: list[str] | None = None
    """Attributes to attack; default: every attribute column in the manifest."""
    preset: Literal["quick", "standard", "thorough"] = "quick"
    seed: int = Field(0, ge=0, le=MAX_SEED)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where the run computes (:func:`audit.devices.select_compute`): ``cuda`` embeds through onnxruntime's CUDA
    provider when installed, else through the torch backend on CUDA; the run stores which."""
    attack_precision: Literal["auto", "float32", "bfloat16"] = "auto"
    """What the gradient attacks compute in (the cloaks and the inversion decoder's training; the white-box
    inversion is always float32): ``auto`` is bfloat16 where the device computes it natively, else float32
    (see :meth:`precision`). Every metric is still measured in float32 (by onnxruntime, or on CUDA without
    onnxruntime's CUDA provider by the parity-checked torch backend); the stored run records the resolved value."""
    attack_threads: int | None = Field(None, ge=1, le=1024)
    """torch's intra-op threads for the run's own torch work (the inversion decoder's training, the white-box and
    query attacks; cloak attacks and attacker fits run one thread each whatever this says): None is every core this
    process may use. Floating-point sums split across threads add up in another order, so the inversion numbers
    depend on it (rates by up to about 0.01): the run records the count used, ``--resume`` keeps it, and a
    reproduction on another machine gives the same count (:meth:`threads`)."""
    batch_size: int = Field(64, ge=1)
    parity: bool = True
    """Compare the torch backend with onnxruntime on a batch and store the result."""
    accept_profile: bool = False
    """Audit even when the preprocessing check finds a clearly better colour order / normalisation."""
    folds: int | None = Field(None, ge=2)
    cv_repeats: int | None = Field(None, ge=1)
    bootstrap: int | None = Field(None, ge=20)
    mlp_epochs: int | None = Field(None, ge=1)
    max_subjects: int | None = Field(None, ge=2)
    max_images: int | None = Field(None, ge=2)
    max_images_per_subject: int | None = Field(None, ge=2)
    """Most images of one person a run uses (default: the preset's)."""
    inversion_queries: int | None = None
    """Queries per victim the query-only inversion attacker may make (default: the preset's): the knob that
    trades the inversion probe's time against the attacker's strength. At least :data:`QUERY_FIRST_STEP` (21: fewer
    take no step); results on less than :data:`QUERY_PASS_BUDGET` (200) can warn or fail but never pass a rule."""
    synthetic_faces: int | None = Field(None, ge=0)
    """Synthetic faces added to the inversion decoder's training set (default: the preset's)."""
    protocol: dict | None = None
    """The protocol the run follows (``audit.protocol.Protocol.record``: name, version, SHA-256, the dataset,
    packs and tool versions it pins), or None."""

    @field_validator("inversion_queries")
    @classmethod
    def _query_budget(cls, v):
        if v is not None and v < QUERY_FIRST_STEP:
            raise ValueError(f"{v} queries per victim let the query-only inversion attacker take no step (each step "
                             f"submits {QUERY_STEP} images after the decoder's one), so its result would be the "
                             f"decoder's image alone; give at least {QUERY_FIRST_STEP}. A result on fewer than "
                             f"{QUERY_PASS_BUDGET} (the quick preset's budget) can warn or fail but never pass a rule")
        return v

    @field_validator("conditions")
    @classmethod
    def _clean_first(cls, v: list[str]) -> list[str]:
        v = [c.strip() for c in v if c.strip()]
        return list(dict.fromkeys(["clean"] + [c for c in v if c != "clean"]))

    @field_validator("detector")
    @classmethod
    def _detector(cls, v: str) -> str:
        v = v.strip()
        if v not in DETECTOR_SPECS and not v.lower().endswith(".onnx"):
            raise ValueError(f"expected auto, none, mtcnn or a detector .onnx file, got {v!r}")
        return v

    @field_validator("probes", "attributes", "cloak_eps", "surrogates", "reference_models")
    @classmethod
    def _once(cls, v: list | None) -> list | None:
        # 'leakage,leakage' would run the probe twice and store every row twice under one run.
        return None if v is None else list(dict.fromkeys(v))

    def setting(self, name: str) -> int | None:
        """A preset value unless overridden explicitly."""
        explicit = getattr(self, name)
        return explicit if explicit is not None else PRESETS[self.preset][name]

    def precision(self) -> str:
        """The attack precision on this run's device, ``auto`` resolved (float32 or bfloat16)."""
        return resolve_precision(self.attack_precision, resolve_device(self.device))

    def threads(self) -> int:
        """torch's intra-op threads for the run (``attack_threads``, else every core this process may use)."""
        from audit.threads import cores

        return self.attack_threads or cores()

    def to_record(self) -> dict:
        rec = self.model_dump(mode="json")
        if not rec["reference_models"]:  # absent when unused: records (and campaign hashes) of other runs unchanged
            del rec["reference_models"]
        rec["resolved"] = {k: self.setting(k) for k in ("folds", "cv_repeats", "bootstrap", "mlp_epochs",
                                                         "max_images", "max_subjects", "max_images_per_subject",
                                                         "inversion_queries", "synthetic_faces")}
        rec["resolved"]["attack_precision"] = self.precision()
        return rec


# What ``--resume`` may differ in: how fast a run goes, not what it stores.
NOT_RESULT_AFFECTING = frozenset({"device", "batch_size", "parity", "accept_profile", "attack_threads"})
"""(The device and torch's thread count change the attacks' numbers a little, not what they mean; ``--resume``
compares what the run computed on, its ``environment['compute']``, instead.)"""
# Files given by path are compared by content: the hashes a run records under ``inputs``.
# The detector and its threshold are compared through ``inputs['detector']`` (the detector's SHA-256 and
# settings, '' when none is used), so 'auto' and 'mtcnn' on a dataset without landmarks are the same.
BY_CONTENT = frozenset({"model", "data", "labels", "profile", "evaluator", "attacker_model", "attribute_model",
                        "surrogates", "reference_models", "detector", "min_face_confidence",
                        "inputs"})


def result_fields(record: dict) -> dict:
    """The part of a run record that decides its numbers: every setting but how fast the run goes
    (:data:`NOT_RESULT_AFFECTING`), with the files given by path (:data:`BY_CONTENT`) present only through
    their content hashes under ``inputs``. Campaigns hash it to skip cells already stored; ``--resume``
    compares it field by field."""
    return {k: v for k, v in record.items() if k not in NOT_RESULT_AFFECTING and (k not in BY_CONTENT or k == "inputs")}


def resume_conflicts(stored: dict, given: dict) -> list[str]:
    """Result-affecting settings in which a resumed run's config differs from the stored run's.

    Parameters
    ----------
    stored, given
        Run records (:meth:`AuditConfig.to_record` plus ``inputs``: model, dataset, profile and helper-model
        hashes). A stored record from before ``inputs`` existed is compared on the inputs it has.

    Returns
    -------
    list of str
        One short phrase per differing setting, e.g. ``"seed (stored 7, given 3)"``; empty when the run may resume.
    """
    out = []
    stored, given = result_fields(stored), result_fields(given)
    for key in sorted((set(stored) | set(given)) - {"inputs"}):
        if stored.get(key) != given.get(key):
            out.append(f"{key} (stored {stored.get(key)!r}, given {given.get(key)!r})")
    s_in, g_in = stored.get("inputs") or {}, given.get("inputs") or {}
    for key in sorted(set(s_in) | set(g_in)):
        if key not in s_in:
            # An input recorded only when given (reference models, a face detector) that the stored run did not
            # have; a record from before every input was recorded (no profile hash) is compared on what it has.
            if g_in[key] and "profile" in s_in:
                out.append(f"{key} (given, the stored run had none)")
        elif s_in[key] != g_in.get(key):
            what = {"dataset": "dataset", "detector": "face detector or confidence threshold",
                    "helper_profiles": "helper model profile"}.get(key, "file")
            out.append(f"{key} (a different {what} from the stored run's)")
    return out


def option_name(field: str) -> str:
    """The CLI option behind a config field: ``cloak_eps.0`` -> ``--cloak-eps``, ``surrogates`` -> ``--surrogate``."""
    name = field.split(".")[0]
    return "--" + {"surrogates": "surrogate", "reference_models": "reference-model", "parity": "no-parity"}.get(name, name).replace("_", "-")


def make_config(**fields) -> AuditConfig:
    """An :class:`AuditConfig`, or a one-line :class:`ConfigError` naming the option at fault."""
    try:
        return AuditConfig(**fields)
    except ValidationError as exc:
        field, msg = first_error(exc)
        got = exc.errors()[0].get("input")
        shown = "" if isinstance(got, dict) or "got " in msg else f" (got {got!r:.80})"  # never the value twice
        raise ConfigError(f"{option_name(field)}: {msg}{shown}") from None


def results_version(version: str | None) -> str | None:
    """The versions whose stored numbers mean the same: ``0.4.x`` for 0.4.1 (None stays None)."""
    if not version:
        return version
    parts = str(version).split(".")
    return ".".join(parts[:2]) + ".x" if len(parts) >= 2 else str(version)


def computed_by_other(run: dict) -> str | None:
    """The faceaudit version that computed ``run`` ("of unknown version" when its environment names none) when its
    stored numbers may mean something other than this faceaudit's (another minor version); None when they mean the
    same. Resume, campaigns, the gate and attestation all ask this one question: a run of unknown version is never
    taken for this version's."""
    made = (run.get("environment") or {}).get("faceaudit")
    if made and results_version(made) == results_version(audit.__version__):
        return None
    return made or "of unknown version"
