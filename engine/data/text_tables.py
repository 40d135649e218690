"""Synthetic lead tables with a long conversation column, with known answers (deterministic, labelled synthetic).

:func:`conversation_table` makes leads whose attributes (numbers and categories) carry one signal and whose
two-speaker call (``Agent: ... Customer: ...`` turns, a few thousand characters) carries another, independent
one: the outcome is drawn from ``sigmoid(attributes + talk)``. So a model of the attributes alone, one of the
conversation alone, and one of both have known orderings: both > each part. The tables behind the stack's text
measurements (``python -m engine.benchmarks.textstack``) and its tests.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: what an agent says (no signal)
AGENT = [
    "Thanks for taking the call today, I wanted to walk you through the plan options.",
    "Could you tell me a little about how your team handles this at the moment?",
    "We offer a monthly and a yearly plan, and onboarding is included in both.",
    "Let me share the pricing sheet and the case study from a similar company.",
    "How many people on your side would be using the platform day to day?",
    "I can set up a trial account so your team can try the reporting features.",
    "Our support team is available by chat and phone during business hours.",
    "Is there anything else you would like me to cover before we wrap up?",
]
#: what a customer says that carries no signal
NEUTRAL = [
    "We use spreadsheets for most of it right now and it works well enough.",
    "There are about twelve people on the team, maybe more later this year.",
    "I looked at the website last week and read a few of the articles.",
    "Our quarter ends in March so things are busy around here at the moment.",
    "The reporting part sounds useful, we do that by hand every Friday.",
    "I am not the only one who looks at tools like this, my manager does too.",
    "Can you send the details by email so I can read them again later?",
    "We had a different vendor two years ago for something similar.",
]
#: what a customer who will buy tends to say
WARM = [
    "The budget was approved last month so we can move quickly on this.",
    "Could we schedule the contract review for next week with our legal team?",
    "This is exactly what we were looking for, the team is excited about it.",
    "Please send the order form, I want to get started before the end of the month.",
    "My director already signed off on the purchase, we just need the paperwork.",
]
#: what a customer who will not buy tends to say
COLD = [
    "Honestly it is too expensive for us right now, maybe next year.",
    "We are not really interested, I only signed up to read the guide.",
    "We just renewed with another provider for three years, so no change soon.",
    "I do not have any budget for new tools and nobody is asking for one.",
    "Please take me off the list, this is not something we need.",
]
REGIONS = ["North", "South", "East", "West", "Central"]
CHANNELS = ["Search", "Referral", "Event", "Social", "Partner"]


def _call(rng: np.random.Generator, talk: float, turns: int) -> str:
    """One call: ``turns`` exchanges of an agent line and a customer line; a customer line is warm with
    probability ``0.18 * sigmoid(2 talk)``, cold with ``0.18 * (1 - sigmoid(2 talk))``, neutral otherwise."""
    warm = 0.18 / (1.0 + np.exp(-2.0 * talk))
    cold = 0.18 - warm
    lines = []
    for _ in range(turns):
        lines.append("Agent: " + AGENT[rng.integers(len(AGENT))])
        u = rng.random()
        pool = WARM if u < warm else COLD if u < warm + cold else NEUTRAL
        lines.append("Customer: " + pool[rng.integers(len(pool))])
    return "\n".join(lines)


def conversation_table(
    n: int = 2000, seed: int = 0, attribute_weight: float = 1.6, talk_weight: float = 1.6, turns: int = 24
) -> pd.DataFrame:
    """``n`` leads: ``lead_id``, ``age``, ``income``, ``visits``, ``region``, ``channel`` (the attributes, whose
    score is ``attribute_weight`` x a standard normal), ``conversation`` (``turns`` exchanges, about
    ``130 x turns`` characters, whose tone follows an independent standard normal ``talk``) and ``label``, drawn
    from ``sigmoid(attribute_weight x a + talk_weight x talk - 0.4)``. Deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    age = rng.normal(42, 11, n).clip(18, 80).round()
    income = np.exp(rng.normal(11, 0.5, n)).round(-2)
    visits = rng.poisson(4, n).astype(float)
    region = rng.choice(REGIONS, n)
    channel = rng.choice(CHANNELS, n, p=[0.35, 0.2, 0.15, 0.2, 0.1])
    effect = {"Search": 0.0, "Referral": 0.9, "Event": 0.5, "Social": -0.6, "Partner": 0.3}
    raw = (
        0.6 * (np.log(income) - 11) / 0.5
        + 0.5 * (visits - 4) / 2
        - 0.4 * ((age - 42) / 11) ** 2
        + np.vectorize(effect.get)(channel)
    )
    attributes = (raw - raw.mean()) / raw.std()
    talk = rng.normal(0, 1, n)
    p = 1.0 / (1.0 + np.exp(-(attribute_weight * attributes + talk_weight * talk - 0.4)))
    label = (rng.random(n) < p).astype(int)
    visits[rng.random(n) < 0.05] = np.nan  # a few blanks, as an export has
    return pd.DataFrame(
        {
            "lead_id": [f"L{seed:02d}{i:06d}" for i in range(n)],
            "age": age,
            "income": income,
            "visits": visits,
            "region": region,
            "channel": channel,
            "conversation": [_call(rng, t, turns) for t in talk],
            "label": label,
        }
    )
