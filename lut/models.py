"""The latency models `hwnas lut fit` compares: each is fitted on some networks and predicts others.

Every model sees a network as its one-hot choices z (networks x features) and, where the profile has
a per-op LUT, the LUT's coefficient vector (so the per-op sum of any z is fixed_ms + z @ op_ms):

  * "linear (ridge)": UNAS's per-choice linear model, g(z) = b + sum c * z, ridge toward 0;
  * "linear (ridge to LUT)": the same form, ridge toward the per-op LUT times one fitted scale;
  * "LUT sum, calibrated": the per-op sum with one scale and offset (linear in z: c = scale * op ms);
  * "linear + adjacent pairs": per-choice terms plus one term per pair of choices of two adjacent
    decisions (z_a * z_b: a layer's cost that depends on its neighbour's choice, e.g. a wider input),
    ridge on the calibrated LUT sum's residual;
  * "gradient boosting": scikit-learn's GradientBoostingRegressor on the per-choice linear model's
    residual: a non-linear reference that can pick up any interaction the linear model misses.

Only the first three may be stored: the search needs g linear in z. Its expected latency under the
relaxed distribution and RELAX's control variate are built from per-choice coefficients
(hwnas.search.latency.LinearSurrogate), and lut.json stores coefficients as plain JSON. The other two
are references: `lut fit` reports how much better (or worse) they score on validation and on held-out
networks, so a reader sees what linearity costs on this device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import LinearRegression, RidgeCV

ALPHAS: np.ndarray = np.logspace(-3, 4, 29)
"""Ridge penalties tried (targets in ms, features one-hot); the one chosen by leave-one-out CV."""

Feature = tuple[str, str]


class Predictor(Protocol):
    """A fitted model: latency (ms) of the networks whose one-hot choices are the rows of z."""

    def predict(self, z: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class LinearFit:
    """A fitted linear predictor over z: bias_ms + z @ coef_ms (storable in lut.json)."""

    kind: str
    bias_ms: float
    coef_ms: np.ndarray
    alpha: float

    def predict(self, z: np.ndarray) -> np.ndarray:
        return self.bias_ms + z @ self.coef_ms


@dataclass(frozen=True)
class PairsFit:
    """A linear model plus adjacent-pair terms: linear part + pair_matrix(z) @ pair_coef_ms."""

    linear: LinearFit
    pairs: tuple[tuple[np.ndarray, np.ndarray], ...]
    pair_coef_ms: np.ndarray

    def predict(self, z: np.ndarray) -> np.ndarray:
        return self.linear.predict(z) + pair_matrix(z, self.pairs) @ self.pair_coef_ms


@dataclass(frozen=True)
class BoostedFit:
    """A linear model plus gradient-boosted trees on its residual."""

    linear: LinearFit
    trees: GradientBoostingRegressor

    def predict(self, z: np.ndarray) -> np.ndarray:
        return self.linear.predict(z) + self.trees.predict(z)


def line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares scale and offset of y on one variable x."""
    model = LinearRegression().fit(x.reshape(-1, 1), y)
    return float(model.coef_[0]), float(model.intercept_)


def fit_ridge(z: np.ndarray, y: np.ndarray) -> LinearFit:
    """Ridge toward zero coefficients, penalty by leave-one-out CV."""
    model = RidgeCV(alphas=ALPHAS).fit(z, y)
    return LinearFit("ridge", float(model.intercept_), np.asarray(model.coef_, dtype=float), float(model.alpha_))


def fit_calibrated_lut(z: np.ndarray, y: np.ndarray, op_ms: np.ndarray, fixed_ms: float) -> LinearFit:
    """The per-op sum fixed_ms + z @ op_ms with one scale and offset, written as a linear model over z."""
    scale, offset = line(fixed_ms + z @ op_ms, y)
    return LinearFit("LUT sum, calibrated", offset + scale * fixed_ms, scale * op_ms, 0.0)


def fit_ridge_to_lut(z: np.ndarray, y: np.ndarray, op_ms: np.ndarray, fixed_ms: float) -> LinearFit:
    """Ridge toward the per-op LUT scaled by one factor: coef = s * lut + delta, delta shrunk to 0."""
    base = fit_calibrated_lut(z, y, op_ms, fixed_ms)
    model = RidgeCV(alphas=ALPHAS).fit(z, y - base.predict(z))
    return LinearFit("ridge to LUT", base.bias_ms + float(model.intercept_),
                     base.coef_ms + np.asarray(model.coef_, dtype=float), float(model.alpha_))


def adjacent_pairs(features: Sequence[Feature]) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """(columns of decision i, columns of decision i+1) for each pair of decisions adjacent in the
    space's order (the order of feature_names(): the network's layer order)."""
    order: list[str] = []
    columns: dict[str, list[int]] = {}
    for j, (decision, _) in enumerate(features):
        if decision not in columns:
            order.append(decision)
            columns[decision] = []
        columns[decision].append(j)
    return tuple((np.array(columns[a]), np.array(columns[b])) for a, b in zip(order, order[1:]))


def pair_matrix(z: np.ndarray, pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """One column per (choice of decision i, choice of decision i+1): 1 where a network chose both."""
    blocks = [(z[:, a][:, :, None] * z[:, b][:, None, :]).reshape(len(z), -1) for a, b in pairs]
    return np.concatenate(blocks, axis=1) if blocks else np.zeros((len(z), 0))


def fit_pairs(z: np.ndarray, y: np.ndarray, base: LinearFit | None,
              pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> PairsFit:
    """Ridge on [z, pair terms] of the base's residual (base None: of y itself), one penalty by LOO CV."""
    residual = y if base is None else y - base.predict(z)
    model = RidgeCV(alphas=ALPHAS).fit(np.concatenate([z, pair_matrix(z, pairs)], axis=1), residual)
    coef = np.asarray(model.coef_, dtype=float)
    main = coef[: z.shape[1]]
    bias = float(model.intercept_) + (0.0 if base is None else base.bias_ms)
    linear = LinearFit("ridge + pairs", bias, main if base is None else base.coef_ms + main, float(model.alpha_))
    return PairsFit(linear, tuple(pairs), coef[z.shape[1]:])


def fit_boosted(z: np.ndarray, y: np.ndarray, linear: LinearFit, seed: int = 0) -> BoostedFit:
    """Gradient-boosted trees (depth 3, shrinkage 0.1, 100 rounds, 80% subsamples) on the residual of
    `linear`: fixed settings, so validation compares model forms, not a hyperparameter search."""
    trees = GradientBoostingRegressor(n_estimators=100, learning_rate=0.1, max_depth=3, subsample=0.8,
                                      random_state=seed)
    trees.fit(z, y - linear.predict(z))
    return BoostedFit(linear, trees)


@dataclass(frozen=True)
class Candidate:
    """A model form: its name in every table, whether lut.json can store it, and its fitter (z, y)."""

    name: str
    storable: bool
    fit: Callable[[np.ndarray, np.ndarray], Predictor]


def candidates(features: Sequence[Feature], lut: tuple[np.ndarray, float] | None) -> list[Candidate]:
    """The model forms that apply: all five with a per-op LUT (op ms per feature, fixed ms), else the
    three that need none (ridge, ridge + pairs, boosting on ridge)."""
    pairs = adjacent_pairs(features)
    if lut is None:
        return [
            Candidate("linear (ridge)", True, fit_ridge),
            Candidate("linear + adjacent pairs", False, lambda z, y: fit_pairs(z, y, None, pairs)),
            Candidate("gradient boosting", False, lambda z, y: fit_boosted(z, y, fit_ridge(z, y))),
        ]
    op_ms, fixed_ms = lut

    def to_lut(z: np.ndarray, y: np.ndarray) -> LinearFit:
        return fit_ridge_to_lut(z, y, op_ms, fixed_ms)

    return [
        Candidate("linear (ridge)", True, fit_ridge),
        Candidate("linear (ridge to LUT)", True, to_lut),
        Candidate("LUT sum, calibrated", True, lambda z, y: fit_calibrated_lut(z, y, op_ms, fixed_ms)),
        Candidate("linear + adjacent pairs", False,
                  lambda z, y: fit_pairs(z, y, fit_calibrated_lut(z, y, op_ms, fixed_ms), pairs)),
        Candidate("gradient boosting", False, lambda z, y: fit_boosted(z, y, to_lut(z, y))),
    ]
