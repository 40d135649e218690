"""The weekly demo as files a user can start the whole loop from (``python -m engine demo --weekly FOLDER``, or
``make weekly-demo``): :func:`engine.data.demo_leads.demo_leads` with ``weeks`` (drifting weekly cohorts with a
``Created On`` date), cut into what the loop needs. Deterministic: the same arguments write the same bytes.

* ``early_weeks.csv`` — the first ``train_weeks`` weeks with ``Converted``: train on them, split by time;
* ``week_NN.csv`` — each later week's leads without ``Converted``: the files to score, one a week;
* ``outcomes_week_NN.csv`` — ``Prospect ID`` and ``Outcome`` (won/lost) of that week: what the CRM sends back;
* ``README.txt`` — the loop, command by command.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from engine.data.demo import demo_leads
from engine.storage import write_bytes, write_text

WEEKS, PER_WEEK, SEED, TRAIN_WEEKS = 16, 200, 3, 4

STEPS = """Conversion Lab: the weekly demo (synthetic leads, not real data; {weeks} weekly cohorts of {per_week} leads
that drift: fewer convert each week, and time on the website counts less).

  python -m engine train leads --data early_weeks.csv --split time --time-column "Created On"   # RUN_ID=...
  python -m engine deploy RUN_ID --note "first weeks"
  python -m engine score --data week_{first:02d}.csv --out ranked_{first:02d}.csv    # each week: the list is kept
  python -m engine outcomes --data outcomes_week_{first:02d}.csv                     # realized vs promised, alerts
  python -m engine train leads --data <recent weeks with outcomes> ...        # a challenger (or: retrain --live)
  python -m engine score --data week_NN.csv --shadow CHALLENGER_ID            # scored beside the live run
  python -m engine outcomes --data outcomes_week_NN.csv --top 50              # champion vs challenger
  python -m engine deploy CHALLENGER_ID --family early_weeks.csv           # it replaces the early weeks' champion
  python -m engine deploy --rollback                                       # and back
"""


def weekly_frames(weeks: int = WEEKS, per_week: int = PER_WEEK, seed: int = SEED) -> tuple[pd.DataFrame, np.ndarray]:
    """The demo leads of ``weeks`` weekly cohorts of ``per_week`` leads, and each row's week (0 = the first)."""
    leads = demo_leads(n=weeks * per_week, seed=seed, weeks=weeks)
    return leads, np.arange(len(leads)) // per_week


def write_weekly_demo(
    folder, weeks: int = WEEKS, per_week: int = PER_WEEK, seed: int = SEED, train_weeks: int = TRAIN_WEEKS
) -> list[Path]:
    """Write the weekly demo's files into ``folder`` (made when missing) and return them. ValueError when the folder
    holds files already (nothing of a user's is written over) or the weeks do not leave a week to score."""
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ValueError(
            f"{folder} is not an empty folder, and the weekly demo writes a dozen files into it. Fix: name a new "
            "folder (it is made for you)."
        )
    if not (1 <= train_weeks < weeks):
        raise ValueError(f"train_weeks must leave at least one week to score: 1 to {weeks - 1}, not {train_weeks}")
    leads, week = weekly_frames(weeks, per_week, seed)
    folder.mkdir(parents=True, exist_ok=True)

    def csv(frame: pd.DataFrame) -> bytes:
        return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")

    written = [folder / "early_weeks.csv"]
    write_bytes(written[0], csv(leads[week < train_weeks]))
    for w in range(train_weeks, weeks):
        part = leads[week == w]
        written.append(folder / f"week_{w + 1:02d}.csv")
        write_bytes(written[-1], csv(part.drop(columns=["Converted"])))
        outcome = np.where(part["Converted"] == 1, "won", "lost")
        written.append(folder / f"outcomes_week_{w + 1:02d}.csv")
        write_bytes(written[-1], csv(pd.DataFrame({"Prospect ID": part["Prospect ID"], "Outcome": outcome})))
    written.append(folder / "README.txt")
    write_text(written[-1], STEPS.format(weeks=weeks, per_week=per_week, first=train_weeks + 1))
    return written
