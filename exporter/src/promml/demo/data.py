"""The demo's synthetic credit-risk data, generated locally so nothing is downloaded (`promml demo-data` writes it
as CSV: see `training_data`).

Two worlds share one generator. The normal world is what the model is trained on. The drifted world is what a
downturn looks like: incomes fall, debt ratios rise (covariate drift on `income` and `debt_ratio`, PSI well above
0.25), and the relation between features and default changes (concept drift), so the model's accuracy falls
below 0.8. `age`, `num_accounts` and `region` keep their distribution, so they are the controls that must not alert.
"""

from __future__ import annotations

from typing import Any

import numpy as np

NUMERIC_FEATURES = ("age", "income", "debt_ratio", "num_accounts")
CATEGORICAL_FEATURES = ("region",)
FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES
REGIONS = ("north", "south", "east", "west")
REGION_SHARES = (0.3, 0.3, 0.2, 0.2)
TARGET = "label"
PREDICTION = "prediction"
SCORE = "score"
"""Columns `--with-predictions` adds: the demo model's answer on each row, for the baseline's prediction drift and
reference performance."""

MEDIAN_INCOME = 50_000.0
DRIFTED_INCOME_FACTOR = 0.55
"""Incomes in the drifted world are 55% of normal: a shift of 1.2 standard deviations of log-income."""
LABEL_NOISE = 0.5
"""Scale of the logistic noise on the default score: small enough that a linear model reaches ~0.9 accuracy."""


def _default_score(age: np.ndarray, log_income: np.ndarray, debt_ratio: np.ndarray, accounts: np.ndarray,
                   south: np.ndarray, drift: bool) -> np.ndarray:
    """The true (hidden) default score: positive means default is likely."""
    if drift:  # in a downturn, debt dominates and a high income no longer protects
        return 1.8 * (debt_ratio - 0.5) / 0.16 + 0.3 * south
    return (
        1.8 * (debt_ratio - 0.286) / 0.16
        - 1.4 * (log_income - np.log(MEDIAN_INCOME)) / 0.5
        + 0.3 * (accounts - 3) / 1.7
        - 0.2 * (age - 40) / 12
        + 0.3 * south
    )


def default_score(columns: dict[str, np.ndarray], *, drift: bool = False) -> np.ndarray:
    """The true (hidden) default score of feature columns (`generate_columns`' form): positive means default is
    likely. Public so a simulation can draw labels from the same relationship as the demo data."""
    south = (np.asarray(columns["region"]) == "south").astype(float)
    return _default_score(np.asarray(columns["age"], dtype=float), np.log(np.asarray(columns["income"], dtype=float)),
                          np.asarray(columns["debt_ratio"], dtype=float),
                          np.asarray(columns["num_accounts"], dtype=float), south, drift)


def generate_columns(n: int, rng: np.random.Generator, *, drift: bool = False) -> tuple[dict[str, np.ndarray],
                                                                                     np.ndarray]:
    """`n` rows as feature columns (numpy arrays) and their true labels: what `generate` returns, without a dict
    per row, for callers that need millions of rows."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    age = np.clip(np.round(rng.normal(40, 12, n)), 18, 90)
    income_center = MEDIAN_INCOME * (DRIFTED_INCOME_FACTOR if drift else 1.0)
    income = np.round(rng.lognormal(np.log(income_center), 0.5, n), 2)
    debt_ratio = np.round(rng.beta(5, 5, n) if drift else rng.beta(2, 5, n), 4)
    accounts = rng.poisson(3, n)
    region = rng.choice(REGIONS, size=n, p=REGION_SHARES)
    columns = {"age": age, "income": income, "debt_ratio": debt_ratio, "num_accounts": accounts, "region": region}
    score = default_score(columns, drift=drift)
    labels = (score + rng.logistic(0, LABEL_NOISE, n) > 0).astype(int)
    return columns, labels


def generate(
    n: int, *, seed: int | None = None, drift: bool = False, rng: np.random.Generator | None = None
) -> tuple[list[dict[str, Any]], list[int]]:
    """`n` feature rows (dicts in the model server's request format) and their true labels (1 = default)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = rng if rng is not None else np.random.default_rng(seed)
    columns, labels = generate_columns(n, rng, drift=drift)
    rows = [
        {"age": float(a), "income": float(i), "debt_ratio": float(d), "num_accounts": int(c), "region": str(r)}
        for a, i, d, c, r in zip(columns["age"], columns["income"], columns["debt_ratio"], columns["num_accounts"],
                                 columns["region"], strict=True)
    ]
    return rows, labels.tolist()
