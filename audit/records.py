"""Record types every floor shares: a metric row and a data-quality row.

They live below ``data``, ``intake`` and ``probes`` so that the data loader, face acquisition and the
probes can all make them without importing one another (``audit.probes.base`` re-exports
:class:`MetricRecord`, so probe code and plugins keep importing it from there).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class MetricRecord:
    """One row of the ``metrics`` table."""

    probe: str
    condition: str
    metric: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    direction: str
    """``higher_is_riskier``, ``lower_is_riskier`` or ``neutral``."""
    attribute: str = ""
    """The attacked attribute (leakage) or the grouping attribute (demographics); '' if none."""
    group: str = "all"
    setting: str = ""
    """Probe-specific context: attacker setting (``train=clean``), FMR target (``fmr=0.001``)."""

    @classmethod
    def of(cls, probe: str, condition: str, metric: str, est, direction: str, **kw) -> "MetricRecord":
        """A record from an :class:`audit.metrics.stats.Estimate` (value, interval and n)."""
        return cls(probe, condition, metric, est.value, est.ci_low, est.ci_high, est.n, direction, **kw)

    @classmethod
    def without_number(cls, probe: str, condition: str, metric: str, direction: str, n: int = 0,
                       **kw) -> "MetricRecord":
        """A row without a number (see :meth:`not_tried`); ``n`` the observations it would have read, if any."""
        return cls(probe, condition, metric, float("nan"), float("nan"), float("nan"), n, direction, **kw)

    def not_tried(self) -> "MetricRecord":
        """This row without a number: an attack not tried (no torch backend, a helper withdrawn) or a quantity not
        measured, which no rule passes (it records that a fail cannot be excluded)."""
        return replace(self, value=float("nan"), ci_low=float("nan"), ci_high=float("nan"), n=0)


@dataclass(frozen=True)
class QualityIssue:
    """An image that could not be used, reported as a data-quality record."""

    image: str
    row: int
    """1-based manifest row."""
    problem: str
    """Short code: ``missing``, ``empty``, ``unreadable``, ``too_large``, ``bad_landmarks``; from face detection
    ``no_face`` and ``low_confidence`` (failures to acquire, as is ``too_small``: an image too small to hold
    a face) and ``multiple_faces`` and ``duplicate_content`` (the same bytes as an earlier image of the same
    person; the image is still used); ``duplicate_other_person`` (the same bytes as an earlier image of another
    person: left out);
    from a labels file ``label_unmatched``."""
    detail: str

    @property
    def excludes(self) -> bool:
        """Whether the image is left out of every analysis (all problems but :data:`USED_ANYWAY`)."""
        return self.problem not in USED_ANYWAY


USED_ANYWAY = frozenset({"multiple_faces", "duplicate_content"})
"""Problems recorded for the reader while the image is still used."""

FAILURES = ("no_face", "low_confidence", "too_small")
"""Problems that are failures to acquire: the detector found no face, or none above the threshold, or the image
is too small to hold a face."""
