"""The convergence rule of attacks now lives in :mod:`audit.convergence` (conditions use it too, below
the probes); probes keep importing :class:`Plateau` from here."""

from audit.convergence import Plateau

__all__ = ["Plateau"]
