"""A seeded, realistic tabular data set for the demo: loan applications.

Numeric and categorical features with realistic shapes (skewed incomes,
low-cardinality terms, bounded ratios, counts), a logistic default-risk model
written in numpy, its score and its decision. Nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LoanGenerator", "NUMERIC", "CATEGORICAL", "PURPOSES"]

NUMERIC = (
    "age", "income", "loan_amount", "term_months", "credit_score", "debt_to_income",
    "employment_years", "open_accounts", "delinquencies", "utilization",
)
CATEGORICAL = ("home_ownership", "purpose", "region", "employment_type")
PURPOSES = ("debt_consolidation", "credit_card", "home_improvement", "car", "education",
            "medical", "other")
_PURPOSE_P = (0.42, 0.20, 0.12, 0.10, 0.07, 0.05, 0.04)


@dataclass
class LoanGenerator:
    """Draws loan applications; the model's weights are fixed, the data seeded."""

    seed: int = 7

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def features(self, n: int) -> dict[str, np.ndarray]:
        r = self.rng
        age = np.clip(r.normal(41, 12, n), 21, 80).round()
        income = np.round(r.lognormal(10.9, 0.55, n), -2)
        loan = np.round(np.clip(income * r.lognormal(-1.3, 0.5, n), 1000, 250_000), -2)
        term = r.choice([12, 24, 36, 48, 60], n, p=[0.08, 0.17, 0.40, 0.15, 0.20]).astype(float)
        credit = np.clip(r.normal(690, 60, n), 300, 850).round()
        dti = np.round(r.beta(2.2, 6.0, n), 4)
        emp_years = np.round(r.gamma(2.0, 3.2, n), 1)
        accounts = r.poisson(7, n).astype(float)
        delinquencies = r.poisson(0.3, n).astype(float)
        utilization = np.round(r.beta(1.6, 2.8, n), 4)
        home = r.choice(["rent", "mortgage", "own"], n, p=[0.46, 0.41, 0.13])
        purpose = r.choice(PURPOSES, n, p=_PURPOSE_P)
        region = r.choice(["northeast", "midwest", "south", "west"], n, p=[0.2, 0.22, 0.36, 0.22])
        emp_type = r.choice(["salaried", "self_employed", "contractor", "unemployed"], n,
                            p=[0.68, 0.16, 0.12, 0.04])
        return {
            "age": age, "income": income, "loan_amount": loan, "term_months": term,
            "credit_score": credit, "debt_to_income": dti, "employment_years": emp_years,
            "open_accounts": accounts, "delinquencies": delinquencies, "utilization": utilization,
            "home_ownership": home, "purpose": purpose, "region": region,
            "employment_type": emp_type,
        }

    @staticmethod
    def score(f: dict[str, np.ndarray]) -> np.ndarray:
        """Probability of default from a fixed logistic model (numpy only).

        Missing values (NaN) are imputed with training means, as a real
        pipeline would, so a broken feature still yields a score.
        """
        def col(name: str, fill: float) -> np.ndarray:
            v = np.asarray(f[name], dtype=np.float64)
            return np.where(np.isnan(v), fill, v)

        z = (-1.2
             - 0.012 * (col("credit_score", 690) - 690)
             + 2.4 * (col("debt_to_income", 0.27) - 0.27)
             + 0.35 * col("delinquencies", 0.3)
             + 1.1 * (col("utilization", 0.36) - 0.36)
             - 0.45 * (np.log(np.maximum(col("income", 60000), 1)) - 10.9)
             + 0.25 * (np.log(np.maximum(col("loan_amount", 15000), 1)) - 9.6)
             + 0.006 * (col("term_months", 38) - 38)
             - 0.03 * (col("employment_years", 6.4) - 6.4))
        z = z + np.where(np.asarray(f["employment_type"]) == "unemployed", 0.9, 0.0)
        z = z + np.where(np.asarray(f["purpose"]) == "medical", 0.3, 0.0)
        return 1.0 / (1.0 + np.exp(-z))

    def training(self, n: int) -> dict[str, np.ndarray]:
        """Features, the model's score and decision, and a simulated ground truth."""
        f = self.features(n)
        p = self.score(f)
        out: dict[str, np.ndarray] = dict(f)
        out["p_default"] = np.round(p, 6)
        out["decision"] = np.where(p > 0.35, "reject", "approve")
        out["defaulted"] = (self.rng.random(n) < p).astype(int)
        # a little realistic missingness in training
        emp = out["employment_years"].astype(np.float64)
        emp[self.rng.random(n) < 0.02] = np.nan
        out["employment_years"] = emp
        return out
