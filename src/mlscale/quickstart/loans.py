"""A synthetic loan-default dataset that looks like real business data.

Used by ``mlscale quickstart`` and by the tests: deterministic for a given seed, vectorised (a
million rows in about a second), with missing values, a label that carries real but noisy signal
(a good GBDT reaches an AUC near 0.8), a drifted variant and, in the CSV only, malformed rows.

>>> table = generate_loans(5)
>>> table.num_rows
5
>>> table.column_names[:4]
['loan_id', 'application_date', 'age', 'annual_income']
>>> table.column("loan_id").to_pylist()[:2]
['L000001', 'L000002']
>>> "default" in generate_loans(5, label=False).column_names
False

``shift=True`` draws a drifted batch dated 2026: lower incomes and credit scores, higher rates,
more small-business and medical loans, a different state mix. Age, term, home ownership, open
accounts and loan amount keep their distribution, so a drift check flags some columns, not all.

``malformed=k`` exists only for :func:`write_loans_csv`: ``k`` rows get a value such as
``"forty"`` or ``"12,5k"`` in a numeric column, for ingestion to quarantine. A typed Arrow table
cannot hold such values, so :func:`generate_loans` refuses ``malformed > 0``.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from mlscale.errors import ConfigError

__all__ = ["COLUMNS", "LABEL", "generate_loans", "write_loans_csv"]

LABEL = "default"
COLUMNS = (
    "loan_id",
    "application_date",
    "age",
    "annual_income",
    "loan_amount",
    "term_months",
    "interest_rate",
    "credit_score",
    "employment_years",
    "home_ownership",
    "purpose",
    "state",
    "num_open_accounts",
    "debt_to_income",
)

TERMS = np.array([12, 24, 36, 48, 60])
TERM_P = [0.08, 0.12, 0.45, 0.10, 0.25]
HOME = ["RENT", "MORTGAGE", "OWN", "OTHER"]
HOME_P = [0.38, 0.40, 0.18, 0.04]
PURPOSES = [
    "debt_consolidation",
    "credit_card",
    "home_improvement",
    "car",
    "medical",
    "small_business",
    "other",
]
PURPOSE_P = [0.40, 0.20, 0.10, 0.09, 0.06, 0.05, 0.10]
PURPOSE_P_SHIFT = [0.26, 0.14, 0.07, 0.07, 0.15, 0.20, 0.11]
# Log-odds added per purpose: small-business and medical loans default more, car loans less.
PURPOSE_RISK = np.array([0.15, 0.0, -0.25, -0.35, 0.35, 0.75, 0.1])
STATES = ["CA", "TX", "FL", "NY", "PA", "IL", "OH", "GA", "NC", "WA"]
STATE_P = [0.22, 0.16, 0.12, 0.12, 0.08, 0.08, 0.06, 0.06, 0.05, 0.05]
STATE_P_SHIFT = [0.10, 0.24, 0.22, 0.06, 0.06, 0.06, 0.07, 0.07, 0.07, 0.05]

MISSING = {"annual_income": 0.03, "credit_score": 0.02, "employment_years": 0.05}

# Values no number parser accepts, and none of them a common null token such as "N/A".
BAD_VALUES = {
    "age": ["forty", "4O", "unknown", "?"],
    "annual_income": ["n/a?", "12,5k", "$52,000", "see notes"],
    "loan_amount": ["10k", "12.000,00", "TBD"],
    "credit_score": ["7OO", "good", "720 pts"],
}


def generate_loans(
    n_rows: int = 20_000,
    *,
    seed: int = 7,
    shift: bool = False,
    malformed: int = 0,
    label: bool = True,
) -> pa.Table:
    """Draw ``n_rows`` loan applications as an Arrow table; the same arguments give the same table.

    The label is drawn whether or not it is kept, so ``label=False`` gives the same features.

    >>> generate_loans(3, seed=1).column("term_months").type
    DataType(int64)
    >>> generate_loans(3, malformed=1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mlscale.errors.ConfigError: malformed=1: a typed table cannot hold malformed values; use ...
    """
    _check(n_rows, malformed)
    if malformed:
        raise ConfigError(
            f"malformed={malformed}: a typed table cannot hold malformed values; "
            f"use write_loans_csv(..., malformed={malformed}) for a CSV with bad rows"
        )
    return _draw(n_rows, seed=seed, shift=shift, label=label)


def write_loans_csv(
    path: str | Path,
    n_rows: int = 20_000,
    *,
    seed: int = 7,
    shift: bool = False,
    malformed: int = 0,
    label: bool = True,
) -> Path:
    """Write :func:`generate_loans` to a CSV file atomically and return its path.

    Missing values are empty fields; timestamps read ``2025-03-04 13:22:10``. With ``malformed=k``,
    ``k`` rows (chosen by the seed) carry an unparseable value in a numeric column; that column is
    then written as quoted text. The other values are those of ``malformed=0``.
    """
    _check(n_rows, malformed)
    table = _draw(n_rows, seed=seed, shift=shift, label=label)
    if malformed:
        table = _corrupt(table, malformed, seed=seed)
    path = Path(path)
    # A named temporary beside the target (not mkstemp, whose 0600 mode would stick to the file).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp.open("xb") as sink:
            pacsv.write_csv(table, sink)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _check(n_rows: int, malformed: int) -> None:
    if n_rows < 0:
        raise ConfigError(f"n_rows must be 0 or more, found {n_rows}")
    if not 0 <= malformed <= n_rows:
        raise ConfigError(f"malformed must be between 0 and n_rows ({n_rows}), found {malformed}")


def _draw(n: int, *, seed: int, shift: bool, label: bool) -> pa.Table:
    rng = np.random.default_rng(seed)

    year = 2026 if shift else 2025
    start = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
    span = int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp()) - start
    # Sorted so that loan ids follow application order, as in a real ledger.
    dates = start + np.sort(rng.integers(0, span, n))

    age = np.clip(np.rint(rng.normal(41, 12, n)), 18, 80).astype(np.int64)
    employment = np.minimum(rng.gamma(1.6, 4.0, n), age - 18 + rng.uniform(0, 1, n))
    employment = np.round(employment, 1)

    # Incomes grow with experience; the shifted batch loses ~30% after loan amounts were set.
    log_income = np.log(52_000) + 0.025 * np.minimum(employment, 20) + rng.normal(0, 0.5, n)
    base_income = np.exp(log_income)
    income = np.round(base_income * (0.7 if shift else 1.0), 2)

    amount = np.exp(np.log(11_000) + 0.35 * (log_income - np.log(60_000)) + rng.normal(0, 0.55, n))
    amount = np.round(np.clip(amount, 1_000, 40_000), 2)
    term = rng.choice(TERMS, n, p=TERM_P)

    credit = rng.normal(695, 65, n) + 1.5 * np.minimum(employment, 15) - (25 if shift else 0)
    credit = np.clip(np.rint(credit), 300, 850).astype(np.int64)

    rate = 5.5 + 28.0 * (850 - credit) / 550 + 0.03 * (term - 36) + rng.normal(0, 1.5, n)
    rate = np.round(np.clip(rate + (1.5 if shift else 0.0), 3.5, 30.0), 2)

    home = rng.choice(len(HOME), n, p=HOME_P)
    purpose = rng.choice(len(PURPOSES), n, p=PURPOSE_P_SHIFT if shift else PURPOSE_P)
    state = rng.choice(len(STATES), n, p=STATE_P_SHIFT if shift else STATE_P)
    accounts = rng.poisson(9, n).astype(np.int64)

    monthly_debt = 0.012 * amount + rng.gamma(2.0, 250, n) + 40 * accounts
    dti = np.round(np.clip(100 * monthly_debt / (income / 12), 0, 80), 2)

    # Log-odds of default: a logistic model of the true (pre-missing) values, with a kink at poor
    # credit so trees have something to find beyond a linear fit.
    loan_to_income = amount / income
    logit = (
        -1.7
        - 0.011 * (credit - 690)
        + 0.5 * (credit < 600)
        + 0.025 * (dti - 22)
        + 0.07 * (rate - 13)
        - 0.45 * (np.log(income) - np.log(55_000))
        + 1.8 * (loan_to_income - 0.2)
        + PURPOSE_RISK[purpose]
        - 0.035 * np.minimum(employment, 20)
        + 0.2 * (term == 60)
    )
    default = (rng.uniform(0, 1, n) < 1 / (1 + np.exp(-logit))).astype(np.int64)

    masks = {col: rng.uniform(0, 1, n) < p for col, p in MISSING.items()}

    columns = {
        "loan_id": _ids(n),
        "application_date": pa.array(dates, type=pa.timestamp("s")),
        "age": pa.array(age),
        "annual_income": pa.array(income, mask=masks["annual_income"]),
        "loan_amount": pa.array(amount),
        "term_months": pa.array(term.astype(np.int64)),
        "interest_rate": pa.array(rate),
        "credit_score": pa.array(credit, mask=masks["credit_score"]),
        "employment_years": pa.array(employment, mask=masks["employment_years"]),
        "home_ownership": _labels(HOME, home),
        "purpose": _labels(PURPOSES, purpose),
        "state": _labels(STATES, state),
        "num_open_accounts": pa.array(accounts),
        "debt_to_income": pa.array(dti),
    }
    if label:
        columns[LABEL] = pa.array(default)
    return pa.table(columns)


def _ids(n: int) -> pa.Array:
    digits = pa.array(np.arange(1, n + 1)).cast(pa.string())
    padded = pc.utf8_lpad(digits, max(6, len(str(n))), "0")
    return pc.binary_join_element_wise("L", padded, "")


def _labels(categories: list[str], codes: np.ndarray) -> pa.Array:
    return pc.take(pa.array(categories), pa.array(codes))


def _corrupt(table: pa.Table, k: int, *, seed: int) -> pa.Table:
    # Own stream, so the bad rows do not change any other value of the batch.
    rng = np.random.default_rng([seed, 0xBAD])
    rows = np.sort(rng.choice(table.num_rows, k, replace=False))
    names = list(BAD_VALUES)
    which = rng.integers(0, len(names), k)
    for j, name in enumerate(names):
        hit = rows[which == j]
        if not len(hit):
            continue
        bad = BAD_VALUES[name]
        mask = np.zeros(table.num_rows, dtype=bool)
        mask[hit] = True
        replacements = pa.array([bad[i] for i in rng.integers(0, len(bad), len(hit))])
        text = table.column(name).combine_chunks().cast(pa.string())
        index = table.column_names.index(name)
        table = table.set_column(index, name, pc.replace_with_mask(text, mask, replacements))
    return table
