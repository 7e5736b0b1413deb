"""Run an attack until its own objective stops improving, within a step cap.

A fixed number of steps either wastes time on an easy model or stops a hard one early, and an
attack stopped early understates the risk. Attacks here record their objective after every
step (or epoch) and stop once it has not improved by more than a relative ``min_delta`` for
``patience`` steps in a row, or when the preset's cap is reached first. The curve and the
reason for stopping are stored with the run so a reader can see the attack had saturated.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Plateau:
    """Patience rule on a loss (lower is better)."""

    cap: int
    """Most steps the preset allows."""
    patience: int = 3
    min_delta: float = 0.005
    """Relative improvement over the best loss so far that counts as progress."""
    curve: list[float] = field(default_factory=list)
    best: float = float("inf")
    since_best: int = 0
    reason: str | None = None

    def step(self, loss: float) -> bool:
        """Record one step's loss; True when the attack should stop."""
        self.curve.append(float(loss))
        if len(self.curve) == 1 or loss < self.best - self.min_delta * abs(self.best):
            self.best, self.since_best = float(loss), 0
        else:
            self.since_best += 1
        if len(self.curve) >= self.cap:
            self.reason = "cap"
        elif self.since_best >= self.patience:
            self.reason = "plateau"
        return self.reason is not None

    def record(self) -> dict:
        """What is stored with the run: steps run, cap, why it stopped, and the curve."""
        return {"steps": len(self.curve), "cap": self.cap, "stopped_by": self.reason or "cap",
                "patience": self.patience, "min_delta": self.min_delta,
                "curve": [round(v, 6) for v in self.curve]}
