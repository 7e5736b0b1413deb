"""Intake of raw photos (detectors, landmark cache, failure to acquire, prepare); imports models, data and below."""

from audit.intake.finder import load

__all__ = ["load"]
