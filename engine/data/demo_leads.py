"""Synthetic demo leads shaped like the X Education lead export (the embedded default data set).

``demo_leads(n=2000, seed=0)`` returns a DataFrame with the 37 columns of the X Education
"Lead Scoring" export, in the same order and spelling, including the ``Converted`` target, the two
ID columns, the post-contact (leaky) columns and the unfilled form value ``'Select'``. The marginal
distributions and the missingness were calibrated by eye against the real file's summary
statistics; no row or value combination of it is copied. The same ``(n, seed)`` gives the same frame.
Every ``Prospect ID`` starts with ``DEMO-`` so the rows cannot be mistaken for real leads.

Latent model (how each lead is drawn)
-------------------------------------
1. **Acquisition.** ``Lead Origin`` ~ {Landing Page Submission .53, API .39, Lead Add Form .075,
   Lead Import .005}; ``Lead Source`` is drawn given the origin (API: Olark Chat / Google / Organic
   Search ...; Landing Page Submission: Direct Traffic / Google / Organic Search ...; Lead Add Form:
   Reference / Welingak Website; Lead Import: Facebook), with a few rare sources and 0.4 % missing.
2. **Web engagement.** A lead never visited the site with probability .45 (API; .9 for Olark Chat),
   .78 (Lead Add Form), .55 (Lead Import), 0 (Landing Page Submission); then TotalVisits, Total Time
   Spent on Website and Page Views Per Visit are 0. Otherwise visits = 1 + NegBin(mean 3.3) (rare
   outliers up to ~250), time in seconds ~ U(700, 2272) for 30 % (long stays) else
   exp(N(5.6, 1.1)), capped at 2272; page views/visit ~ exp(N(1.0, 0.45)) rounded to halves. Visits and page views are missing together for 1.5 %.
3. **Profile form.** With probability .38 (API), .20 (Landing Page Submission), .15 (Lead Add Form),
   .5 (Lead Import) the lead skipped the profile form: occupation, "What matters most" and Lead
   Profile are all missing (as in the real file). Otherwise occupation ~ {Unemployed .855,
   Working Professional .11, Student .03, Other/Housewife/Businessman}. Specialization, City and
   "How did you hear" are missing or 'Select' with the real file's shares (more often missing when
   the form was skipped); Country (India for 94 %) is filled for 99 % of Landing Page Submission leads, 53 % of API
   leads and almost no form/import leads.
4. **Last activity** ~ {Email Opened .37, SMS Sent .30, Olark Chat Conversation .105 (.4 for Olark
   Chat leads), Page Visited .07, Converted to Lead .046, Email Bounced .035, ...}; Email Bounced and
   Unsubscribed make ``Do Not Email`` = Yes likelier. ``Last Notable Activity`` = the last activity
   for notable events, else 'Modified' (with some 'Modified' overwrites as in CRM exports).
5. **Conversion.** ``Converted ~ Bernoulli(sigmoid(z))`` with

   z = -1.75 + 1.7·(time/1000) + 0.35·[visited]·log1p(visits)/2
       + origin {Lead Add Form +2.6, Lead Import -0.6, API +0.1}
       + source {Reference +1.0, Welingak Website +2.6, Olark Chat -0.2, Referral Sites -0.5,
                 Facebook -0.3}
       + occupation {Working Professional +3.0, Housewife/Businessman +1.5, Student -0.3,
                     Other +0.6, form skipped -1.6}
       + last activity {SMS Sent +1.25, Had a Phone Conversation +1.8, Email Opened +0.2,
                        Olark Chat Conversation -1.7, Email Bounced -2.0, Converted to Lead -1.5,
                        Page Visited -0.3, Unsubscribed -0.6, ...}
       + Do Not Email {Yes -0.9} + free-copy {Yes -0.15} + N(0, 0.7) noise.

   The intercept makes about 38 % of leads convert. A good model on the non-leaky columns reaches
   roughly 0.85-0.90 ROC-AUC (the noise term caps it).
6. **Leaky, post-contact columns** are drawn from the outcome, as the sales team fills them in:
   ``Tags`` (missing 23 % of converted / 44 % of lost leads; converted leads get "Will revert after
   reading the email", "Closed by Horizzon", "Lost to EINS" ...; lost leads "Ringing", "Interested
   in other courses", "Already a student" ...), ``Lead Quality`` (missing 29 % / 66 %; "High in
   Relevance" and "Might be" for converted, "Not Sure" and "Worst" for lost), ``Lead Profile``
   ('Select' for most, "Potential Lead" mostly for converted, "Student of SomeSchool" for lost),
   and the four ``Asymmetrique`` columns (all missing for 45.6 %; scores shifted by the outcome,
   index = banded score: Activity High >= 16, Low <= 12; Profile High >= 17, Low <= 12).

Weekly cohorts that drift (``demo_leads(n, seed, weeks=W)``)
-------------------------------------------------------------
With ``weeks`` the frame gains ``Created On`` (ISO dates, after ``Lead Number``): the rows are W weekly cohorts
of equal size in order, week w starting ``start`` + 7·w days (default 2024-01-01, a Monday), each lead on a day
of its week drawn uniformly. With t = w / (W - 1) (0 in the first week, 1 in the last) the cohorts drift:

* **mix**: the origin shares move linearly from the table above to API .55, Landing Page Submission .42,
  Lead Add Form .025, Lead Import .005 (fewer form leads, who convert most; more chat leads);
* **conversion**: the intercept falls by :data:`DRIFT_INTERCEPT` (0.9) and the effect of time on the website
  by :data:`DRIFT_TIME_EFFECT` (from 1.7 to 0.9 per 1,000 s): a model fitted on the early weeks ranks long
  stays too high later on.

Together the weekly conversion rate falls from about 38 % in the first weeks to about 20 % in the last
(measured over 40,000 leads in 20 weeks, seed 0: first four weeks 37.6 %, last four 20.3 %). Without ``weeks`` the
frame is exactly the undated one above (the stored demo file and every number measured on it stay as they are).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DEMO_NOTICE = "Synthetic demo data generated by Conversion Lab — not real leads."

#: The X Education export's columns, in its order.
COLUMNS = [
    "Prospect ID",
    "Lead Number",
    "Lead Origin",
    "Lead Source",
    "Do Not Email",
    "Do Not Call",
    "Converted",
    "TotalVisits",
    "Total Time Spent on Website",
    "Page Views Per Visit",
    "Last Activity",
    "Country",
    "Specialization",
    "How did you hear about X Education",
    "What is your current occupation",
    "What matters most to you in choosing a course",
    "Search",
    "Magazine",
    "Newspaper Article",
    "X Education Forums",
    "Newspaper",
    "Digital Advertisement",
    "Through Recommendations",
    "Receive More Updates About Our Courses",
    "Tags",
    "Lead Quality",
    "Update me on Supply Chain Content",
    "Get updates on DM Content",
    "Lead Profile",
    "City",
    "Asymmetrique Activity Index",
    "Asymmetrique Profile Index",
    "Asymmetrique Activity Score",
    "Asymmetrique Profile Score",
    "I agree to pay the amount through cheque",
    "A free copy of Mastering The Interview",
    "Last Notable Activity",
]

NA = None  # marker for a missing cell in the choice tables below

ORIGINS = {"Landing Page Submission": 0.53, "API": 0.39, "Lead Add Form": 0.075, "Lead Import": 0.005}
SOURCES_BY_ORIGIN = {
    "API": {
        "Olark Chat": 0.49,
        "Google": 0.32,
        "Organic Search": 0.125,
        "Direct Traffic": 0.03,
        "Referral Sites": 0.028,
        "google": 0.002,
        "Social Media": 0.001,
        "Live Chat": 0.001,
        NA: 0.003,
    },
    "Landing Page Submission": {
        "Direct Traffic": 0.485,
        "Google": 0.335,
        "Organic Search": 0.14,
        "Referral Sites": 0.006,
        "bing": 0.002,
        "Pay per Click Ads": 0.001,
        "Press_Release": 0.001,
        "blog": 0.001,
        NA: 0.003,
    },
    "Lead Add Form": {
        "Reference": 0.74,
        "Welingak Website": 0.20,
        "Google": 0.02,
        "Direct Traffic": 0.02,
        "Click2call": 0.006,
        "Olark Chat": 0.004,
        NA: 0.01,
    },
    "Lead Import": {"Facebook": 0.93, "bing": 0.07},
}
P_NO_VISIT = {"API": 0.45, "Landing Page Submission": 0.0, "Lead Add Form": 0.78, "Lead Import": 0.55}
P_COUNTRY = {"API": 0.53, "Landing Page Submission": 0.992, "Lead Add Form": 0.03, "Lead Import": 0.0}
P_FORM_SKIPPED = {"API": 0.38, "Landing Page Submission": 0.20, "Lead Add Form": 0.15, "Lead Import": 0.5}
OCCUPATIONS = {
    "Unemployed": 0.855,
    "Working Professional": 0.108,
    "Student": 0.032,
    "Other": 0.0025,
    "Housewife": 0.0015,
    "Businessman": 0.001,
}
WHAT_MATTERS = {"Better Career Prospects": 0.9995, "Flexibility & Convenience": 0.0003, "Other": 0.0002}
LAST_ACTIVITY = {
    "Email Opened": 0.372,
    "SMS Sent": 0.297,
    "Olark Chat Conversation": 0.105,
    "Page Visited on Website": 0.069,
    "Converted to Lead": 0.046,
    "Email Bounced": 0.035,
    "Email Link Clicked": 0.029,
    "Form Submitted on Website": 0.0125,
    "Unreachable": 0.01,
    "Unsubscribed": 0.0066,
    "Had a Phone Conversation": 0.0033,
    "Approached upfront": 0.001,
    "View in browser link Clicked": 0.0007,
    "Email Received": 0.0002,
    "Email Marked Spam": 0.0002,
    NA: 0.0115,
}
NOTABLE = {
    "Email Opened",
    "SMS Sent",
    "Page Visited on Website",
    "Olark Chat Conversation",
    "Email Link Clicked",
    "Email Bounced",
    "Unsubscribed",
    "Unreachable",
    "Had a Phone Conversation",
    "Email Marked Spam",
    "Approached upfront",
    "Email Received",
    "View in browser link Clicked",
}
SPECIALIZATIONS = {
    "Finance Management": 976,
    "Human Resource Management": 848,
    "Marketing Management": 838,
    "Operations Management": 503,
    "Business Administration": 403,
    "IT Projects Management": 366,
    "Supply Chain Management": 349,
    "Banking, Investment And Insurance": 338,
    "Media and Advertising": 203,
    "Travel and Tourism": 203,
    "International Business": 178,
    "Healthcare Management": 159,
    "Hospitality Management": 114,
    "E-COMMERCE": 112,
    "Retail Management": 100,
    "Rural and Agribusiness": 73,
    "E-Business": 57,
    "Services Excellence": 40,
}
HEARD = {
    "Online Search": 808,
    "Word Of Mouth": 348,
    "Student of SomeSchool": 310,
    "Other": 186,
    "Multiple Sources": 152,
    "Advertisements": 70,
    "Social Media": 67,
    "Email": 26,
    "SMS": 23,
}
CITIES = {
    "Mumbai": 3222,
    "Thane & Outskirts": 752,
    "Other Cities": 686,
    "Other Cities of Maharashtra": 457,
    "Other Metro Cities": 380,
    "Tier II Cities": 74,
}
COUNTRIES = {
    "India": 6492,
    "United States": 69,
    "United Arab Emirates": 53,
    "Singapore": 24,
    "Saudi Arabia": 21,
    "United Kingdom": 15,
    "Australia": 13,
    "Qatar": 10,
    "Bahrain": 7,
    "Hong Kong": 7,
    "Oman": 6,
    "France": 6,
    "unknown": 5,
    "Kuwait": 4,
    "Canada": 4,
    "Nigeria": 4,
    "Germany": 4,
    "South Africa": 4,
    "Sweden": 3,
    "Ghana": 2,
    "Belgium": 2,
    "China": 2,
    "Netherlands": 2,
    "Italy": 2,
    "Philippines": 2,
    "Bangladesh": 2,
    "Uganda": 2,
    "Asia/Pacific Region": 2,
    "Kenya": 1,
    "Denmark": 1,
    "Malaysia": 1,
    "Russia": 1,
    "Sri Lanka": 1,
    "Switzerland": 1,
    "Tanzania": 1,
    "Vietnam": 1,
    "Liberia": 1,
    "Indonesia": 1,
}
TAGS_CONVERTED = {
    "Will revert after reading the email": 2007,
    "Closed by Horizzon": 356,
    "Lost to EINS": 171,
    "Busy": 105,
    "Interested in other courses": 13,
    "Ringing": 34,
    "Graduation in progress": 7,
    "opp hangup": 3,
    "in touch with EINS": 3,
    "Interested in Next batch": 5,
    "Lateral student": 3,
    "Want to take admission but has financial problems": 2,
    "Still Thinking": 1,
    "Shall take in the next coming month": 1,
    "Interested  in full time MBA": 3,
}
TAGS_LOST = {
    "Ringing": 1169,
    "Interested in other courses": 500,
    "Already a student": 462,
    "switched off": 236,
    "Not doing further education": 144,
    "Interested  in full time MBA": 114,
    "Graduation in progress": 104,
    "invalid number": 82,
    "Busy": 81,
    "Will revert after reading the email": 65,
    "Diploma holder (Not Eligible)": 62,
    "wrong number given": 47,
    "opp hangup": 30,
    "number not provided": 27,
    "in touch with EINS": 9,
    "Lost to Others": 7,
    "Still Thinking": 5,
    "In confusion whether part time or DLP": 4,
    "Lost to EINS": 4,
    "Closed by Horizzon": 2,
    "Want to take admission but has financial problems": 4,
}
QUALITY_CONVERTED = {"Might be": 1179, "High in Relevance": 603, "Low in Relevance": 477, "Not Sure": 266, "Worst": 12}
QUALITY_LOST = {"Not Sure": 826, "Worst": 589, "Might be": 381, "Low in Relevance": 106, "High in Relevance": 34}
PROFILE_CONVERTED = {
    "Select": 0.55,
    "Potential Lead": 0.36,
    "Other Leads": 0.05,
    "Lateral Student": 0.007,
    "Dual Specialization Student": 0.006,
    "Student of SomeSchool": 0.003,
}
PROFILE_LOST = {"Select": 0.70, "Potential Lead": 0.10, "Other Leads": 0.09, "Student of SomeSchool": 0.06}

W_ORIGIN = {"Lead Add Form": 2.6, "Lead Import": -0.6, "API": 0.1, "Landing Page Submission": 0.0}
W_SOURCE = {"Reference": 1.0, "Welingak Website": 2.6, "Olark Chat": -0.2, "Referral Sites": -0.5, "Facebook": -0.3}
W_OCCUPATION = {
    "Working Professional": 3.0,
    "Housewife": 1.5,
    "Businessman": 1.5,
    "Student": -0.3,
    "Other": 0.6,
    "Unemployed": 0.0,
}
W_FORM_SKIPPED = -1.6
W_ACTIVITY = {
    "SMS Sent": 1.25,
    "Had a Phone Conversation": 1.8,
    "Email Opened": 0.2,
    "Olark Chat Conversation": -1.7,
    "Email Bounced": -2.0,
    "Converted to Lead": -1.5,
    "Page Visited on Website": -0.3,
    "Unsubscribed": -0.6,
    "Email Link Clicked": -0.4,
    "Form Submitted on Website": -0.5,
    "Unreachable": -0.1,
    "Approached upfront": 2.0,
    "Email Received": 1.5,
    "Email Marked Spam": 1.0,
}
INTERCEPT = -1.75
NOISE_SD = 0.7
#: The weekly cohorts' drift (module docstring): the origin mix in the last week, the fall of the intercept and
#: of the website time effect from the first week to the last.
ORIGINS_LAST = {"Landing Page Submission": 0.42, "API": 0.55, "Lead Add Form": 0.025, "Lead Import": 0.005}
DRIFT_INTERCEPT = 0.9
DRIFT_TIME_EFFECT = 0.8


def _choice(rng: np.random.Generator, table: dict, size: int) -> np.ndarray:
    """Draw from {value: weight}; None values become NaN in the returned object array."""
    keys = list(table)
    p = np.array([table[k] for k in keys], dtype=float)
    idx = rng.choice(len(keys), size=size, p=p / p.sum())
    return np.array([np.nan if k is None else k for k in keys], dtype=object)[idx]


def _choice_by(rng: np.random.Generator, groups: np.ndarray, tables: dict) -> np.ndarray:
    out = np.empty(len(groups), dtype=object)
    for key, table in tables.items():
        mask = groups == key
        if mask.any():
            out[mask] = _choice(rng, table, int(mask.sum()))
    return out


def _mix(rng: np.random.Generator, n: int, p_missing: float, p_select: float, table: dict) -> np.ndarray:
    out = _choice(rng, table, n)
    u = rng.random(n)
    out[u < p_missing + p_select] = "Select"
    out[u < p_missing] = np.nan
    return out


def _flag(rng: np.random.Generator, n: int, p_yes: float) -> np.ndarray:
    return np.where(rng.random(n) < p_yes, "Yes", "No").astype(object)


def _lookup(values: np.ndarray, weights: dict, default: float = 0.0) -> np.ndarray:
    return np.array([weights.get(v, default) if isinstance(v, str) else default for v in values], dtype=float)


def demo_leads(n: int = 2000, seed: int = 0, weeks: int | None = None, start: str = "2024-01-01") -> pd.DataFrame:
    """Synthetic X Education-style leads with a ``Converted`` column; with ``weeks``, weekly cohorts from
    ``start`` with a ``Created On`` date, drifting as the module docstring says."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if weeks is not None and not (isinstance(weeks, int) and 1 <= weeks <= n):
        raise ValueError(f"weeks must be a whole number from 1 to n ({n}), got {weeks!r}")
    rng = np.random.default_rng(seed)
    week = None if weeks is None else np.arange(n) * weeks // n
    drift = np.zeros(n) if week is None else week / max(weeks - 1, 1)

    # 1. acquisition
    if week is None:
        origin = _choice(rng, ORIGINS, n)
    else:  # each row's shares between the first week's and the last week's
        keys = list(ORIGINS)
        first, last = np.array([ORIGINS[k] for k in keys]), np.array([ORIGINS_LAST[k] for k in keys])
        cumulative = np.cumsum(first[None, :] * (1 - drift[:, None]) + last[None, :] * drift[:, None], axis=1)
        picks = (rng.random(n)[:, None] * cumulative[:, -1:] >= cumulative).sum(axis=1)
        origin = np.array(keys, dtype=object)[np.minimum(picks, len(keys) - 1)]
    source = _choice_by(rng, origin, SOURCES_BY_ORIGIN)
    # 2. web engagement
    p_no_visit = np.array([P_NO_VISIT[o] for o in origin])
    p_no_visit = np.where(source == "Olark Chat", 0.9, p_no_visit)
    visited = rng.random(n) >= p_no_visit
    visits = np.where(visited, 1 + rng.negative_binomial(2, 2 / (2 + 3.3), n), 0).astype(float)
    outlier = visited & (rng.random(n) < 0.003)
    visits[outlier] = rng.integers(20, 252, int(outlier.sum()))
    long_stay = rng.random(n) < 0.3
    time_spent = np.where(long_stay, rng.uniform(700, 2272, n), np.exp(rng.normal(5.6, 1.1, n)))
    time_spent = np.where(visited, np.clip(np.round(time_spent), 1, 2272), 0).astype(float)
    views = np.where(visited, np.round(np.exp(rng.normal(1.0, 0.45, n)) * 2) / 2, 0.0)
    views = np.where(visited & (rng.random(n) < 0.25), np.round(views * rng.uniform(0.7, 1.0, n), 2), views)
    views = np.maximum(views, np.where(visited, 1.0, 0.0))
    web_missing = rng.random(n) < 0.015
    visits[web_missing] = np.nan
    views[web_missing] = np.nan

    # 3. profile form
    form_skipped = rng.random(n) < np.array([P_FORM_SKIPPED[o] for o in origin])
    occupation = _choice(rng, OCCUPATIONS, n)
    occupation[form_skipped] = np.nan
    matters = _choice(rng, WHAT_MATTERS, n)
    matters[form_skipped] = np.nan
    specialization = np.where(
        form_skipped, _mix(rng, n, 0.45, 0.15, SPECIALIZATIONS), _mix(rng, n, 0.04, 0.24, SPECIALIZATIONS)
    )
    heard = np.where(form_skipped, _mix(rng, n, 0.75, 0.2, HEARD), _mix(rng, n, 0.03, 0.69, HEARD))
    city = np.where(form_skipped, _mix(rng, n, 0.48, 0.2, CITIES), _mix(rng, n, 0.02, 0.25, CITIES))
    p_country = np.array([P_COUNTRY[o] for o in origin])
    country = np.where(rng.random(n) < p_country, _choice(rng, COUNTRIES, n), np.nan).astype(object)

    # 4. activity and flags
    activity = _choice(rng, LAST_ACTIVITY, n)
    olark = (source == "Olark Chat") & (rng.random(n) < 0.35)
    activity[olark] = "Olark Chat Conversation"
    do_not_email = _flag(rng, n, 0.06)
    bounced = np.isin(activity, ["Email Bounced", "Unsubscribed"]) & (rng.random(n) < 0.45)
    do_not_email[bounced] = "Yes"
    notable = np.array([a if isinstance(a, str) and a in NOTABLE else "Modified" for a in activity], dtype=object)
    modified = rng.random(n) < np.where(np.isin(activity, ["Email Opened", "SMS Sent"]), 0.2, 0.5)
    notable[modified] = "Modified"
    free_copy = np.where(origin == "Landing Page Submission", _flag(rng, n, 0.55), _flag(rng, n, 0.02))

    # 5. conversion
    z = (
        INTERCEPT
        - DRIFT_INTERCEPT * drift
        + (1.7 - DRIFT_TIME_EFFECT * drift) * time_spent / 1000
        + 0.35 * visited * np.log1p(np.nan_to_num(visits)) / 2
        + _lookup(origin, W_ORIGIN)
        + _lookup(source, W_SOURCE)
        + _lookup(occupation, W_OCCUPATION)
        + W_FORM_SKIPPED * form_skipped
        + _lookup(activity, W_ACTIVITY)
        - 0.9 * (do_not_email == "Yes")
        - 0.15 * (free_copy == "Yes")
        + rng.normal(0, NOISE_SD, n)
    )
    converted = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    yes = converted == 1

    # 6. leaky post-contact columns, drawn from the outcome
    tags = np.where(yes, _choice(rng, TAGS_CONVERTED, n), _choice(rng, TAGS_LOST, n))
    tags[rng.random(n) < np.where(yes, 0.235, 0.44)] = np.nan
    quality = np.where(yes, _choice(rng, QUALITY_CONVERTED, n), _choice(rng, QUALITY_LOST, n))
    quality[rng.random(n) < np.where(yes, 0.29, 0.66)] = np.nan
    profile = np.where(yes, _choice(rng, PROFILE_CONVERTED, n), _choice(rng, PROFILE_LOST, n))
    profile[form_skipped] = np.nan
    asym_missing = rng.random(n) < 0.456
    act_score = np.clip(np.round(rng.normal(14.3 + 0.5 * (yes - 0.4), 1.3, n)), 7, 18)
    prof_score = np.clip(np.round(rng.normal(16.3 + 1.0 * (yes - 0.4), 1.7, n)), 11, 20)
    act_index = np.where(act_score >= 16, "01.High", np.where(act_score <= 12, "03.Low", "02.Medium")).astype(object)
    prof_index = np.where(prof_score >= 17, "01.High", np.where(prof_score <= 12, "03.Low", "02.Medium")).astype(object)
    for arr in (act_score, prof_score):
        arr[asym_missing] = np.nan
    act_index[asym_missing] = np.nan
    prof_index[asym_missing] = np.nan

    # identifiers: DEMO- prefixed UUID-shaped ids, unique descending lead numbers
    hexes = rng.integers(0, 16, size=(n, 32))
    digits = np.array(list("0123456789abcdef"))[hexes]
    ids = [
        "DEMO-"
        + "".join(r[:8])
        + "-"
        + "".join(r[8:12])
        + "-"
        + "".join(r[12:16])
        + "-"
        + "".join(r[16:20])
        + "-"
        + "".join(r[20:])
        for r in digits
    ]
    lead_numbers = (
        660737 - np.sort(rng.choice(np.arange(0, 90000), size=n, replace=False))
        if n <= 90000
        else 660737 - np.arange(n)
    )

    frame = pd.DataFrame(
        {
            "Prospect ID": ids,
            "Lead Number": lead_numbers.astype(np.int64),
            "Lead Origin": origin,
            "Lead Source": source,
            "Do Not Email": do_not_email,
            "Do Not Call": _flag(rng, n, 0.0003),
            "Converted": converted.astype(np.int64),
            "TotalVisits": visits,
            "Total Time Spent on Website": time_spent.astype(np.int64),
            "Page Views Per Visit": views,
            "Last Activity": activity,
            "Country": country,
            "Specialization": specialization,
            "How did you hear about X Education": heard,
            "What is your current occupation": occupation,
            "What matters most to you in choosing a course": matters,
            "Search": _flag(rng, n, 0.0015),
            "Magazine": _flag(rng, n, 0.0),
            "Newspaper Article": _flag(rng, n, 0.0003),
            "X Education Forums": _flag(rng, n, 0.0001),
            "Newspaper": _flag(rng, n, 0.0001),
            "Digital Advertisement": _flag(rng, n, 0.0005),
            "Through Recommendations": _flag(rng, n, 0.0008),
            "Receive More Updates About Our Courses": _flag(rng, n, 0.0),
            "Tags": tags,
            "Lead Quality": quality,
            "Update me on Supply Chain Content": _flag(rng, n, 0.0),
            "Get updates on DM Content": _flag(rng, n, 0.0),
            "Lead Profile": profile,
            "City": city,
            "Asymmetrique Activity Index": act_index,
            "Asymmetrique Profile Index": prof_index,
            "Asymmetrique Activity Score": act_score,
            "Asymmetrique Profile Score": prof_score,
            "I agree to pay the amount through cheque": _flag(rng, n, 0.0),
            "A free copy of Mastering The Interview": free_copy,
            "Last Notable Activity": notable,
        }
    )
    for col in frame.columns:
        if frame[col].dtype == object:
            frame[col] = frame[col].astype("str")
    frame.attrs["notice"] = DEMO_NOTICE
    if week is None:
        return frame[COLUMNS]
    days = np.random.default_rng([seed, 7]).integers(0, 7, n)  # its own stream: the leads are as without dates
    created = np.datetime64(start, "D") + (7 * week + days).astype("timedelta64[D]")
    frame = frame[COLUMNS]
    frame.insert(COLUMNS.index("Lead Number") + 1, "Created On", pd.Series(created).dt.strftime("%Y-%m-%d"))
    return frame
