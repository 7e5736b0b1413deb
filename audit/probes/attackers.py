"""Attribute-inference attackers: linear models and k-nearest neighbours (scikit-learn) and small torch MLPs
(trained in batched groups), each family with one hyperparameter chosen by inner grouped cross-validation."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from audit.seeding import derive_seed


class MLPGroup:
    """Several independent one-hidden-layer MLPs (dropout, Adam with weight decay, mini-batches) of the same
    width, trained side by side as one batched network: one step updates every model at once.

    A single small MLP fit is almost all per-step overhead (about 1.5 ms a step on this machine for
    a 128-d input), and the leakage probe fits one per fold, repeat, condition and attribute; a group
    pays the overhead once for all of them. The models stay independent: each has its own inputs,
    standardisation, classes, seeded initialisation, shuffling and dropout, and Adam (with weight
    decay) acts on each parameter element separately, so a model's updates come from its own loss
    alone. Every model takes the same number of mini-batches per epoch, ``ceil(max n / batch)``,
    its rows split as evenly as that allows (at most ``batch`` each).

    Mini-batches give about eight updates for the cost of one full-batch step: on the sample world
    (fr-baseline embeddings; sex, skin tone, control; clean and masked; 5-fold grouped CV, two
    repeats) 10 mini-batch epochs at width 192 scored the same balanced accuracy as the 100
    full-batch epochs used before (0.766 vs 0.765 sex, 0.976 vs 0.977 skin tone, 0.741 vs 0.734
    masked sex) in a quarter of the time.
    """

    def __init__(self, task: str, epochs: int, hidden: int = 64, dropout: float = 0.2, batch: int = 128,
                 lr: float = 3e-3):
        self.task, self.epochs, self.hidden, self.dropout, self.batch, self.lr = task, epochs, hidden, dropout, batch, lr

    def fit(self, xs: list[np.ndarray], ys: list[np.ndarray], seeds: list[int]) -> list["FittedMLP"]:
        j, d, h = len(xs), xs[0].shape[1], self.hidden
        gens = [torch.Generator().manual_seed(s % (2**63)) for s in seeds]
        n = [len(x) for x in xs]
        mus = [x.mean(0) for x in xs]
        sds = [x.std(0) + 1e-6 for x in xs]
        xt = torch.zeros(j, max(n), d)
        for i, x in enumerate(xs):
            xt[i, :n[i]] = torch.from_numpy(((x - mus[i]) / sds[i]).astype(np.float32))
        classification = self.task == "classification"
        if classification:
            classes = [np.unique(y) for y in ys]
            out = max(len(c) for c in classes)
            yt = torch.zeros(j, max(n), dtype=torch.long)
            # Class-balanced, as the attack is scored (balanced accuracy): each class weighs n / (k n_c), so a
            # minority class is not given up for plain accuracy (a review: a 10% class's leakage was understated).
            cw = torch.zeros(j, out)
            for i, y in enumerate(ys):
                codes = np.searchsorted(classes[i], y)
                yt[i, :n[i]] = torch.from_numpy(codes)
                counts = np.bincount(codes, minlength=len(classes[i]))
                cw[i, :len(classes[i])] = torch.from_numpy(n[i] / (len(classes[i]) * counts)).float()
        else:
            stats = [(float(y.mean()), float(y.std() + 1e-6)) for y in ys]
            out = 1
            yt = torch.zeros(j, max(n))
            for i, y in enumerate(ys):
                yt[i, :n[i]] = torch.from_numpy(((y - stats[i][0]) / stats[i][1]).astype(np.float32))
        w1, b1 = torch.zeros(j, d, h), torch.zeros(j, 1, h)
        w2, b2 = torch.zeros(j, h, out), torch.zeros(j, 1, out)
        for i, g in enumerate(gens):
            torch.nn.init.normal_(w1[i], 0, (1 / d) ** 0.5, generator=g)
            torch.nn.init.normal_(w2[i], 0, (1 / h) ** 0.5, generator=g)
        params = [w1, b1, w2, b2]
        for t in params:
            t.requires_grad_(True)
        opt = torch.optim.Adam(params, lr=self.lr, weight_decay=1e-3)
        keep = 1 - self.dropout
        n_batches = -(-max(n) // self.batch)
        rows = torch.arange(j)[:, None]
        for _ in range(self.epochs):
            # Each model's order and dropout come from its own generator (not torch's global one), so fits are
            # reproducible whichever thread runs them and whichever models share the group.
            parts = [torch.tensor_split(torch.randperm(n[i], generator=g), n_batches) for i, g in enumerate(gens)]
            for s in range(n_batches):
                size = max(len(p[s]) for p in parts)
                idx = torch.zeros(j, size, dtype=torch.long)
                valid = torch.zeros(j, size)
                for i, p in enumerate(parts):
                    idx[i, :len(p[s])] = p[s]
                    valid[i, :len(p[s])] = 1
                mask = torch.stack([(torch.rand((size, h), generator=g) < keep).float() for g in gens]) / keep
                hidden = torch.relu(torch.baddbmm(b1, xt[rows, idx], w1)) * mask
                pred = torch.baddbmm(b2, hidden, w2)
                if classification:
                    target = yt[rows, idx]
                    per_row = torch.nn.functional.cross_entropy(pred.reshape(-1, out), target.reshape(-1),
                                                                reduction="none").view(j, size)
                    weight = valid * cw[rows, target]
                else:
                    per_row = (pred[..., 0] - yt[rows, idx]) ** 2
                    weight = valid
                # the sum of every model's own (class-weighted) mean loss: each model's gradient is its own loss's
                loss = ((per_row * weight).sum(1) / weight.sum(1).clamp(min=1e-6)).sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
        weights = [t.detach() for t in params]
        return [FittedMLP(self.task, mus[i], sds[i], [t[i] for t in weights],
                          classes[i] if classification else None, None if classification else stats[i])
                for i in range(j)]


class FittedMLP:
    """One trained model of an :class:`MLPGroup`: ``predict`` like a scikit-learn estimator."""

    def __init__(self, task, mu, sd, weights, classes, stats):
        self.task, self.mu, self.sd, self.weights, self.classes_, self.stats = task, mu, sd, weights, classes, stats

    def predict(self, x: np.ndarray) -> np.ndarray:
        w1, b1, w2, b2 = self.weights
        with torch.no_grad():
            z = torch.from_numpy(((x - self.mu) / self.sd).astype(np.float32))
            out = torch.relu(z @ w1 + b1) @ w2 + b2
        if self.task == "classification":
            return self.classes_[out[:, :len(self.classes_)].argmax(1).numpy()]
        return out[:, 0].numpy() * self.stats[1] + self.stats[0]


FAMILIES: dict[str, dict[str, tuple]] = {
    # family -> hyperparameter grid searched by inner grouped cross-validation
    "classification": {"logreg": (0.03, 0.3, 3.0), "knn": (5, 15, 45), "mlp": (64, 192)},
    "regression": {"ridge": (1.0, 10.0, 100.0), "knn": (5, 15, 45), "mlp": (64, 192)},
}
"""Attacker families per task and the grid each family's one hyperparameter is chosen from: the
regularisation C of logistic regression (alpha of ridge), the number of neighbours of k-nearest
neighbours (distance-weighted, on standardised features; the non-linear attacker from scikit-learn),
and the hidden width of the torch MLP."""


def family_grid(task: str, family: str, n_train: int) -> tuple:
    """``family``'s grid for attackers fitted on at least ``n_train`` rows.

    k-nearest neighbours cannot ask for more neighbours than the training rows hold, so larger k are
    dropped; when none of the grid fits, the one k left is ``n_train`` itself (every training row). Other
    families, and k-NN on data large enough for the whole grid, get :data:`FAMILIES`' grid unchanged."""
    grid = FAMILIES[task][family]
    if family != "knn":
        return grid
    if n_train < 1:
        raise ValueError("k-nearest neighbours need at least one training row")
    return tuple(p for p in grid if p <= n_train) or (n_train,)


def make_attacker(family: str, task: str, param):
    """A fresh scikit-learn attacker of ``family`` with its hyperparameter set to ``param`` (MLPs are fitted in
    groups: :func:`fit_attackers`)."""
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    cls = task == "classification"
    if family == "logreg":
        # tol 1e-3: the attack's accuracy is settled long before lbfgs's default tolerance, at half the cost.
        # class-balanced, as the attack is scored (balanced accuracy)
        return make_pipeline(StandardScaler(), LogisticRegression(C=param, max_iter=500, tol=1e-3,
                                                                  class_weight="balanced"))
    if family == "ridge":
        return make_pipeline(StandardScaler(), Ridge(alpha=param))
    if family == "knn":
        # brute force: on 100+ dimensions trees are slower than one matrix product
        knn = (KNeighborsClassifier if cls else KNeighborsRegressor)(n_neighbors=int(param), weights="distance",
                                                                     algorithm="brute")
        return make_pipeline(StandardScaler(), knn)
    raise ValueError(f"unknown attacker family {family!r}")


def fit_attackers(x: np.ndarray, y: np.ndarray, jobs: list[tuple], task: str, mlp_epochs: int) -> list:
    """Fit every job ``(family, param, seed, train_rows)`` on ``x[train_rows], y[train_rows]``; returns the fitted
    attackers in job order. MLP jobs of the same width train together as one :class:`MLPGroup`; the groups
    and the scikit-learn fits run side by side, single-threaded, one per core. Every fit has its own seed, so
    nothing depends on scheduling."""
    from audit.threads import side_by_side

    groups: dict = {}
    for i, (family, param, _, _) in enumerate(jobs):
        if family == "mlp":
            groups.setdefault(param, []).append(i)
    work = [("mlp", members) for members in groups.values()] + [
        ("sklearn", [i]) for i, job in enumerate(jobs) if job[0] != "mlp"]  # the groups are the long jobs: first

    def fit(item):
        kind, members = item
        if kind == "mlp":
            group = MLPGroup(task, mlp_epochs, hidden=int(jobs[members[0]][1]))
            return list(zip(members, group.fit([x[jobs[i][3]] for i in members], [y[jobs[i][3]] for i in members],
                                               [jobs[i][2] for i in members])))
        family, param, _, rows = jobs[members[0]]
        return [(members[0], make_attacker(family, task, param).fit(x[rows], y[rows]))]

    fitted: list = [None] * len(jobs)
    for pairs in side_by_side(fit, work):
        for i, model in pairs:
            fitted[i] = model
    return fitted


def tune(x: np.ndarray, y: np.ndarray, subjects: np.ndarray, task: str, mlp_epochs: int, seed: int,
         folds: int = 3, min_train: int | None = None, strata: np.ndarray | None = None,
         families: tuple[str, ...] | None = None) -> dict[str, dict]:
    """Choose each family's (or each of ``families``') hyperparameter by grouped ``folds``-fold cross-validation
    (persons never on both sides; folds stratified by ``strata``, one label per row, as the outer folds are); returns
    {family: {"param": chosen, "scores": {param: score}}} (higher score is better).

    Small data sets (:func:`family_grid`): the k-nearest-neighbour grid scored is what the smallest inner
    training fold allows, and ``min_train``, the fewest rows the chosen attacker will later be fitted on,
    bounds the choice among them (when none of them fits, k is ``min_train``). Where every fit works the
    result is that of the whole grid."""
    from audit.data.split import subject_folds

    k = int(min(folds, len(np.unique(subjects))))
    splits = subject_folds(subjects, k, derive_seed(seed, "tune"), strata=strata)
    n_train = min(len(tr) for tr, _ in splits)
    grids = {family: family_grid(task, family, n_train) for family in FAMILIES[task]
             if families is None or family in families}
    keys = [(family, param, f) for family, grid in grids.items() for param in grid for f in range(k)]
    fitted = fit_attackers(x, y, [(fam, param, derive_seed(seed, "tune", fam, param, f), splits[f][0])
                                  for fam, param, f in keys], task, mlp_epochs)
    predictions = {key: atk.predict(x[splits[key[2]][1]]) for key, atk in zip(keys, fitted)}
    out = {}
    for family, grid in grids.items():
        scores = {}
        for param in grid:
            pred = np.zeros(len(y), dtype=float)
            for f, (_, te) in enumerate(splits):
                pred[te] = predictions[(family, param, f)]
            scores[param] = _score(y, pred, task)
        usable = grid
        if min_train is not None:
            fits = family_grid(task, family, int(min_train))
            usable = tuple(p for p in grid if p in fits) or fits
        best = max(usable, key=lambda p: (scores.get(p, -np.inf), -usable.index(p)))
        out[family] = {"param": best, "scores": {str(p): float(v) for p, v in scores.items()}}
    return out


def _score(y: np.ndarray, pred: np.ndarray, task: str) -> float:
    if task == "regression":
        return -float(np.mean(np.abs(y - pred)))
    labels = np.unique(y)
    return float(np.mean([np.mean(pred[y == c] == c) for c in labels]))  # balanced accuracy
