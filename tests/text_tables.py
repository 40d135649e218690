"""Columns and lead tables with free text, many-level categories and ids, generated with a seed: the tables the
text-kind thresholds (engine.data.leads.kinds) were chosen on, shared by the data, CLI and LLM tests."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd

WORDS = (
    "price budget manager demo call week trial interested pricing renewal contract team decision quarter email "
    "follow discount onboarding seats invoice approval competitor timeline signature pilot"
).split()
_WORDS = np.array(WORDS, dtype=object)
SHORT_NOTES = ["called, no answer", "left voicemail", "no answer", "wrong number", "call back later"]
CITIES = ["Pune", "Mumbai", "Delhi", "Austin", "Boston", "Paris", "Lyon", "Oslo", "Lima", "Quito"] + [
    f"Town {chr(65 + i % 26)}{chr(65 + (i // 26) % 26)}" for i in range(290)
]
TITLES = [
    f"{level} {role}"
    for level in ("Senior", "Junior", "Lead", "Head of", "Chief", "Associate", "Principal", "Staff", "Deputy", "VP")
    for role in (
        "Engineer Sales Manager Marketing Director Accountant Data Scientist Product Owner HR Partner Designer "
        "Analyst Consultant Architect Recruiter Buyer Nurse Teacher Lawyer Editor Planner Trader Chemist Pilot Chef "
        "Auditor Officer Clerk Advisor Coach Developer Operator Technician"
    ).split()
][:300]


def note(rng: np.random.Generator, low: int = 5, high: int = 40) -> str:
    return " ".join(_WORDS[rng.integers(0, len(WORDS), int(rng.integers(low, high)))]).capitalize() + "."


def conversation(rng: np.random.Generator, turns: tuple[int, int] = (12, 40), hopeful: bool | None = None) -> str:
    """A two-speaker call ("Agent: ... Customer: ..."), thousands of characters, one turn a line."""
    lines = []
    n_turns = int(rng.integers(*turns))
    lengths = rng.integers(8, 30, n_turns)
    picks = rng.integers(0, len(WORDS), int(lengths.sum()))
    ends = np.cumsum(lengths)
    for t in range(n_turns):
        who = "Agent" if t % 2 == 0 else "Customer"
        words = list(_WORDS[picks[ends[t] - lengths[t] : ends[t]]])
        if hopeful is not None and who == "Customer" and t % 4 == 1:
            words += ["send", "the", "contract", "today"] if hopeful else ["not", "interested", "thanks"]
        lines.append(f"{who}: " + " ".join(words) + ".")
    return "\n".join(lines)


def columns(n: int = 600, seed: int = 0) -> dict[str, tuple[list, str]]:
    """``{name: (values, kind it must be read as)}``: every column of length ``n``."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    return {
        "Notes": ([rng.choice(SHORT_NOTES) if rng.random() < 0.6 else note(rng) for _ in range(n)], "text"),
        "Mostly short notes": (
            [rng.choice(SHORT_NOTES) if rng.random() < 0.85 else note(rng) for _ in range(n)],
            "text",
        ),
        "Sparse notes": ([note(rng, 8) if rng.random() < 0.04 else None for _ in range(n)], "text"),
        "Call transcript": ([conversation(rng) for _ in range(n)], "text"),
        "City": ([CITIES[i % 300] for i in order], "high_cardinality"),
        "Job Title": ([TITLES[i % 300] for i in order], "high_cardinality"),
        "Product": ([f"Plan {i % 40} annual billing with premium support" for i in range(n)], "categorical"),
        "Lead UUID": ([str(uuid.UUID(int=int(rng.integers(0, 2**62)))) for _ in range(n)], "identifier"),
        "Ref": ([f"LD-{i:06d}" for i in range(n)], "identifier"),
        "Email": ([f"user{i % (n - 20)}@example{i % 7}.com" for i in range(n)], "identifier"),
        "Profile": ([f"https://www.linkedin.com/in/person-{i}" for i in range(n)], "identifier"),
        "Landing Page": ([f"https://site.example/landing/{i % 12}" for i in range(n)], "categorical"),
        "Visits (text)": ([str(int(v)) for v in rng.integers(0, 30, n)], "numeric"),
        "Surname": (
            [f"{a}{b}" for a, b in zip(np.resize(list("BCDFGHKLMNPRST"), n), _syllables(n))],
            "high_cardinality",
        ),
    }


def _syllables(n: int) -> list[str]:
    parts = ["ana", "ello", "orsky", "ington", "adze", "uez", "ardi", "ova", "sen", "ström", "ier", "ucci"]
    return [parts[i % 12] + parts[(i // 12) % 12] + parts[(i // 144) % 12] for i in range(n)]


def lead_table(n: int = 400, seed: int = 0, signal: bool = True) -> pd.DataFrame:
    """A lead table of another CRM's schema: an id, a city, a channel, visits, a call transcript per lead (whose
    words carry the outcome when ``signal``) and the outcome column ``label`` (won/lost)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return pd.DataFrame(
        {
            "Lead Ref": [f"LD-{i:06d}" for i in range(n)],
            "City": [CITIES[i % 60] for i in rng.permutation(n)],
            "Channel": rng.choice(["web", "event", "partner", "cold call"], n),
            "Visits": rng.integers(0, 12, n),
            "Call transcript": [conversation(rng, (12, 30), bool(v) if signal else None) for v in y],
            "label": np.where(y == 1, "won", "lost"),
        }
    )
