"""Run configuration (pydantic) and presets.

Every random choice in a run derives from ``seed``; the config is stored with the run, so
the report's reproducibility appendix can show exactly what ran.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

PRESETS: dict[str, dict] = {
    # folds: subject-grouped k for the leakage attackers (at least 5 everywhere: fewer folds train the
    # attacker on less data and understate leakage); cv_repeats: cross-validations with different split
    # seeds, pooled, so the intervals hold the split-to-split variance; bootstrap: resamples per CI;
    # mlp_epochs: full-batch epochs for the MLP attacker; max_subjects: cap on persons used.
    "quick": {"folds": 5, "cv_repeats": 2, "bootstrap": 200, "mlp_epochs": 100, "max_subjects": 300},
    "standard": {"folds": 5, "cv_repeats": 3, "bootstrap": 1000, "mlp_epochs": 300, "max_subjects": 2000},
    "thorough": {"folds": 5, "cv_repeats": 5, "bootstrap": 2000, "mlp_epochs": 500, "max_subjects": 100000},
}
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
    cloak_eps: list[float] = Field(default_factory=lambda: [8.0])
    """L-infinity budgets (0-255 scale) of the cloak probe."""
    data: str = "sample"
    """Dataset folder or manifest, or ``sample`` for the embedded synthetic set."""
    probes: list[str] = Field(default_factory=lambda: list(DEFAULT_PROBES))
    conditions: list[str] = Field(default_factory=lambda: list(DEFAULT_CONDITIONS))
    attributes: list[str] | None = None
    """Attributes to attack; default: every attribute column in the manifest."""
    preset: Literal["quick", "standard", "thorough"] = "quick"
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    batch_size: int = Field(64, ge=1)
    parity: bool = True
    """Compare the torch backend with onnxruntime on a batch and store the result."""
    folds: int | None = Field(None, ge=2)
    cv_repeats: int | None = Field(None, ge=1)
    bootstrap: int | None = Field(None, ge=20)
    mlp_epochs: int | None = Field(None, ge=1)
    max_subjects: int | None = Field(None, ge=2)

    @field_validator("conditions")
    @classmethod
    def _clean_first(cls, v: list[str]) -> list[str]:
        v = [c.strip() for c in v if c.strip()]
        return ["clean"] + [c for c in v if c != "clean"]

    def setting(self, name: str) -> int:
        """A preset value unless overridden explicitly."""
        explicit = getattr(self, name)
        return explicit if explicit is not None else PRESETS[self.preset][name]

    def to_record(self) -> dict:
        rec = self.model_dump(mode="json")
        rec["resolved"] = {k: self.setting(k) for k in ("folds", "cv_repeats", "bootstrap", "mlp_epochs",
                                                         "max_subjects")}
        return rec


# What ``--resume`` may differ in: how fast a run goes, not what it stores.
NOT_RESULT_AFFECTING = frozenset({"device", "batch_size", "parity"})
# Files given by path are compared by content: the hashes a run records under ``inputs``.
BY_CONTENT = frozenset({"model", "data", "profile", "evaluator", "attacker_model", "attribute_model", "surrogates",
                        "inputs"})


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
    for key in sorted((set(stored) | set(given)) - NOT_RESULT_AFFECTING - BY_CONTENT):
        if stored.get(key) != given.get(key):
            out.append(f"{key} (stored {stored.get(key)!r}, given {given.get(key)!r})")
    s_in, g_in = stored.get("inputs") or {}, given.get("inputs") or {}
    for key in sorted(s_in):
        if s_in[key] != g_in.get(key):
            out.append(f"{key} (a different {'dataset' if key == 'dataset' else 'file'} from the stored run's)")
    return out
