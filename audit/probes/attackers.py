"""Attribute-inference attackers: linear models (scikit-learn) and a small torch MLP."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from audit.seeding import derive_seed


class TorchMLP:
    """One hidden layer, full-batch Adam with weight decay; classification or regression."""

    def __init__(self, task: str, epochs: int, seed: int, hidden: int = 64):
        self.task, self.epochs, self.seed, self.hidden = task, epochs, seed, hidden

    def fit(self, x: np.ndarray, y: np.ndarray) -> "TorchMLP":
        g = torch.Generator().manual_seed(self.seed % (2**63))
        self.mu, self.sd = x.mean(0), x.std(0) + 1e-6
        xt = torch.from_numpy(((x - self.mu) / self.sd).astype(np.float32))
        if self.task == "classification":
            self.classes_ = np.unique(y)
            yt = torch.from_numpy(np.searchsorted(self.classes_, y)).long()
            out = len(self.classes_)
        else:
            self.ym, self.ys = float(y.mean()), float(y.std() + 1e-6)
            yt = torch.from_numpy(((y - self.ym) / self.ys).astype(np.float32))
            out = 1
        l1 = torch.nn.Linear(x.shape[1], self.hidden)
        l2 = torch.nn.Linear(self.hidden, out)
        for layer in (l1, l2):
            torch.nn.init.normal_(layer.weight, 0, (1 / layer.in_features) ** 0.5, generator=g)
            torch.nn.init.zeros_(layer.bias)
        self.net = torch.nn.Sequential(l1, torch.nn.ReLU(), torch.nn.Dropout(0.2), l2)
        opt = torch.optim.Adam(self.net.parameters(), lr=1e-2, weight_decay=1e-3)
        torch.manual_seed(self.seed % (2**63))
        self.net.train()
        for _ in range(self.epochs):
            pred = self.net(xt)
            if self.task == "classification":
                loss = torch.nn.functional.cross_entropy(pred, yt)
            else:
                loss = torch.nn.functional.mse_loss(pred[:, 0], yt)
            opt.zero_grad()
            loss.backward()
            opt.step()
        self.net.eval()
        return self

    def _forward(self, x: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            return self.net(torch.from_numpy(((x - self.mu) / self.sd).astype(np.float32)))

    def predict(self, x: np.ndarray) -> np.ndarray:
        out = self._forward(x)
        if self.task == "classification":
            return self.classes_[out.argmax(1).numpy()]
        return out[:, 0].numpy() * self.ys + self.ym


def make_attackers(task: str, mlp_epochs: int, seed: int, key: str) -> dict[str, object]:
    """Fresh, seeded attackers for one fit: ``linear`` and ``mlp``."""
    if task == "classification":
        linear = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, C=1.0))
    else:
        linear = make_pipeline(StandardScaler(), Ridge(alpha=1.0))
    return {"linear": linear, "mlp": TorchMLP(task, mlp_epochs, derive_seed(seed, "mlp", key))}
