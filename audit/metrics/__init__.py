"""Metrics: subject-level bootstrap, verification/identification, demographic differentials."""
