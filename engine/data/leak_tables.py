"""Synthetic lead tables with planted post-outcome fields, for measuring and testing the leak finder.

Two schemas, both time-confounded: the outcome's rate drifts strongly with the calendar, so every
column that follows the calendar predicts it fairly well on its own (ROC-AUC about 0.75-0.80) while
adding nothing the others do not already carry.

* ``"bank"`` — shaped like the public bank-marketing export: age, job, marital status, education,
  credit flags, contact channel, ``month`` and ``day_of_week`` of the call, campaign counts,
  ``poutcome`` (the outcome of the *previous* campaign: known before contact, named like an outcome)
  and five economic indicators that are set per calendar month (``emp_var_rate``, ``cons_price_idx``,
  ``cons_conf_idx``, ``euribor3m``, ``nr_employed``).
* ``"saas"`` — a software trial CRM: ``created_date`` (the calendar), company size, industry, source,
  country, trial activity counts, pages viewed, a webinar flag, a market index per month.

The planted leak (``leak``), whose single-column ROC-AUC is about ``strength``:

* ``"numeric"`` — the call's length in seconds (``duration`` / ``call_minutes``), recorded after the
  call: longer for leads that convert;
* ``"category"`` — a disposition the rep picks after the call (``call_disposition`` /
  ``opportunity_stage``);
* ``"date"`` — a date set after creation (``last_contact_date`` / ``stage_changed_date``), later for
  leads that convert, blank for some leads (more of the lost ones);

or ``None`` for the clean table. Each leak is drawn from the outcome plus noise (a latent
``strength_shift * y + N(0, 1)``), so it carries information no other column has. Deterministic for
a given ``seed``; ``rate`` is the share of converted leads (matched to within sampling noise).
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

__all__ = ["leak_table", "LEAK_COLUMNS", "SCHEMAS", "LEAK_KINDS"]

SCHEMAS = ("bank", "saas")
LEAK_KINDS = ("numeric", "category", "date")
#: The planted column's name for each schema and leak kind.
LEAK_COLUMNS = {
    "bank": {"numeric": "duration", "category": "call_disposition", "date": "last_contact_date"},
    "saas": {"numeric": "call_minutes", "category": "opportunity_stage", "date": "stage_changed_date"},
}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_PERIODS = 26  # calendar months covered (bank: May 2008 to June 2010)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _intercept(logit: np.ndarray, rate: float) -> float:
    """The shift that makes the mean conversion probability ``rate`` (bisection)."""
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if _sigmoid(logit + mid).mean() < rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _calendar(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Calendar period of each lead (most leads early, as in the bank export) and its effect on the outcome."""
    weights = np.exp(-np.arange(_PERIODS) / 9.0)
    period = rng.choice(_PERIODS, size=n, p=weights / weights.sum())
    # a slump, then a recovery: the rate moves by several-fold over the months
    effect = 2.4 * _sigmoid((np.arange(_PERIODS) - 13.0) / 1.5) - 0.6 * np.sin(np.arange(_PERIODS) / 2.0)
    return period, effect[period]


def _choice(rng: np.random.Generator, values: list[str], n: int, p: list[float] | None = None) -> np.ndarray:
    return rng.choice(np.array(values, dtype=object), size=n, p=None if p is None else np.array(p) / np.sum(p))


def _bank(rng: np.random.Generator, n: int, cal_weight: float) -> tuple[pd.DataFrame, np.ndarray]:
    period, cal = _calendar(rng, n)
    month_index = (4 + period) % 12  # May 2008 onwards
    p = np.arange(_PERIODS)
    # indicators set once per month (quarter for emp_var_rate), each following the same slump
    slump = _sigmoid((p - 13.0) / 1.5)
    emp = np.round(1.4 - 3.2 * slump[(p // 3) * 3], 1)
    price = np.round(93.9 + 0.6 * np.cos(p / 2.5) - 0.4 * slump, 3)
    conf = np.round(-36.4 + 6.0 * np.sin(p / 3.0) - 5.0 * slump, 1)
    euribor = np.round(4.9 - 4.0 * slump + 0.1 * np.cos(p), 3)
    employed = np.round(5228.1 - 190.0 * slump, 1)
    job = _choice(
        rng,
        ["admin.", "blue-collar", "technician", "services", "management", "retired", "entrepreneur"]
        + ["self-employed", "housemaid", "unemployed", "student", "unknown"],
        n,
        [25, 22, 16, 10, 7, 4, 3.5, 3.5, 2.5, 2.5, 2, 2],
    )
    age = np.where(job == "retired", rng.integers(55, 90, n), np.where(job == "student", rng.integers(18, 30, n), 0))
    age = np.where(age == 0, np.clip(np.round(rng.normal(40, 10, n)), 18, 88), age).astype(float)
    contact = _choice(rng, ["cellular", "telephone"], n, [64, 36])
    previous = rng.poisson(0.2 + 0.4 * slump[period], n).astype(float)
    poutcome = np.where(
        previous == 0, "nonexistent", np.where(rng.random(n) < 0.3 + 0.2 * slump[period], "success", "failure")
    )
    pdays = np.where(poutcome == "success", rng.integers(1, 27, n), 999).astype(float)
    campaign = (1 + rng.geometric(0.4, n) - 1).astype(float)
    X = pd.DataFrame(
        {
            "age": age,
            "job": job,
            "marital": _choice(rng, ["married", "single", "divorced"], n, [60, 28, 12]),
            "education": _choice(
                rng, ["university.degree", "high.school", "basic.9y", "professional.course", "basic.4y"], n
            ),
            "default": _choice(rng, ["no", "unknown"], n, [79, 21]),
            "housing": _choice(rng, ["yes", "no"], n, [52, 48]),
            "loan": _choice(rng, ["no", "yes"], n, [82, 18]),
            "contact": contact,
            "month": np.array(_MONTHS, dtype=object)[month_index],
            "day_of_week": _choice(rng, ["mon", "tue", "wed", "thu", "fri"], n),
            "campaign": campaign,
            "pdays": pdays,
            "previous": previous,
            "poutcome": poutcome,
            "emp_var_rate": emp[period],
            "cons_price_idx": price[period],
            "cons_conf_idx": conf[period],
            "euribor3m": euribor[period],
            "nr_employed": employed[period],
        }
    )
    logit = (
        cal_weight * cal
        + 0.7 * np.isin(job, ["student", "retired"])
        + 0.4 * (contact == "cellular")
        + 1.2 * (poutcome == "success")
        - 0.08 * campaign
        + rng.normal(0, 0.5, n)
    )
    return X, logit


def _saas(rng: np.random.Generator, n: int, cal_weight: float) -> tuple[pd.DataFrame, np.ndarray]:
    period, cal = _calendar(rng, n)
    day = rng.integers(0, 28, n)
    start = np.datetime64("2024-01-01")
    created = start + (period * 30 + day).astype("timedelta64[D]")
    size = _choice(rng, ["1-10", "11-50", "51-200", "201-1000", "1000+"], n, [30, 30, 20, 12, 8])
    source = _choice(rng, ["Organic", "Paid search", "Referral", "Partner", "Event"], n, [35, 30, 15, 10, 10])
    sessions = rng.poisson(3 + 2 * (source == "Referral"), n).astype(float)
    pages = np.round(sessions * np.exp(rng.normal(1.0, 0.5, n)), 1)
    webinar = _choice(rng, ["Yes", "No"], n, [15, 85])
    p = np.arange(_PERIODS)
    market = np.round(100 - 12 * _sigmoid((p - 13.0) / 1.5) + 2 * np.sin(p / 2.0), 2)
    X = pd.DataFrame(
        {
            "created_date": pd.Series(created).dt.strftime("%Y-%m-%d").to_numpy(dtype=object),
            "company_size": size,
            "industry": _choice(rng, ["Retail", "Finance", "Health", "Software", "Education", "Other"], n),
            "source": source,
            "country": _choice(rng, ["US", "UK", "DE", "FR", "IN", "BR"], n, [40, 15, 12, 10, 13, 10]),
            "sessions": sessions,
            "pages_viewed": pages,
            "attended_webinar": webinar,
            "market_index": market[period],
        }
    )
    logit = (
        cal_weight * cal
        + 0.25 * np.log1p(sessions)
        + 0.5 * (webinar == "Yes")
        + 0.4 * (source == "Referral")
        + 0.3 * np.isin(size, ["201-1000", "1000+"])
        + rng.normal(0, 0.5, n)
    )
    return X, logit


def _plant(rng: np.random.Generator, X: pd.DataFrame, y: np.ndarray, schema: str, leak: str, strength: float) -> None:
    """Add the post-outcome column (see the module docstring) in place."""
    n = len(y)
    shift = np.sqrt(2.0) * NormalDist().inv_cdf(strength)  # ROC-AUC of shift*y + N(0, 1) is ``strength``
    z = shift * y + rng.normal(0, 1, n)
    name = LEAK_COLUMNS[schema][leak]
    if leak == "numeric":
        seconds = np.round(np.exp(5.3 + 0.8 * z))
        X[name] = seconds if schema == "bank" else np.round(seconds / 60.0, 1)
    elif leak == "category":
        labels = {
            "bank": ["no answer", "not interested", "call back", "interested"],
            "saas": ["Discovery", "Qualification", "Demo", "Proposal"],
        }[schema]
        cuts = np.quantile(z, [0.35, 0.6, 0.85])
        X[name] = np.array(labels, dtype=object)[np.searchsorted(cuts, z)]
    else:
        if "created_date" in X:
            created = pd.to_datetime(X["created_date"]).to_numpy()
        else:  # the bank schema has no creation date: the contact month's first day stands in
            created = np.datetime64("2008-05-01") + rng.integers(0, 30 * _PERIODS, n).astype("timedelta64[D]")
            X.insert(0, "created_date", pd.Series(created).dt.strftime("%Y-%m-%d").to_numpy(dtype=object))
        days = np.round(np.exp(1.5 + 0.7 * z)).astype(int)
        when = pd.Series(created + days.astype("timedelta64[D]")).dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
        blank = rng.random(n) < np.where(y == 1, 0.1, 0.3)
        when[blank] = None
        X[name] = when


def leak_table(
    schema: str = "bank",
    *,
    n: int = 20_000,
    rate: float = 0.11,
    leak: str | None = "numeric",
    strength: float = 0.81,
    seed: int = 0,
) -> pd.DataFrame:
    """A synthetic lead table with a ``converted`` 0/1 column; see the module docstring."""
    if schema not in SCHEMAS:
        raise ValueError(f"schema must be one of {SCHEMAS}, got {schema!r}")
    if leak is not None and leak not in LEAK_KINDS:
        raise ValueError(f"leak must be None or one of {LEAK_KINDS}, got {leak!r}")
    if not 0.0 < rate < 1.0 or not 0.5 < strength < 1.0:
        raise ValueError(f"rate must be in (0, 1) and strength in (0.5, 1), got {rate} and {strength}")
    rng = np.random.default_rng(seed)
    # the calendar's weight on the logit scale, smaller at low rates, so that the calendar columns reach a
    # single-column ROC-AUC of about 0.77 at every rate
    cal_weight = 1.45 - 0.55 * np.log10(0.4 / rate)
    X, logit = (_bank if schema == "bank" else _saas)(rng, n, cal_weight)
    y = (rng.random(n) < _sigmoid(logit + _intercept(logit, rate))).astype(int)
    if leak is not None:
        _plant(rng, X, y, schema, leak, strength)
    X["converted"] = y
    return X
