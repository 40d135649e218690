"""Measure the stack with a free-text column on tables with known answers.

``python -m engine.benchmarks.textstack [--rows 2000] [--seeds 0] [--json OUT]`` makes
:func:`engine.data.text_tables.conversation_table` tables (attributes with one signal, a long two-speaker call
with another, independent one), splits each by the protocol (stratified 70/30, seed 42) and reports test ROC-AUC
of: the stack on the attributes only, on the conversation only, and on both; beside them the plain parts (a
logistic regression of the attributes; TF-IDF + logistic regression of the conversation,
:func:`engine.approaches.lexical.tfidf_logistic`) and the rank average of those two. "both" should beat each part
and match or beat the rank average. The numbers behind docs/RESULTS.md's text section.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

ATTRIBUTES = ["age", "income", "visits", "region", "channel"]
TEXT = "conversation"


def _plain_parts(train, test, y_tr) -> dict[str, np.ndarray]:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from engine.approaches.lexical import tfidf_logistic

    numbers = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    columns = ColumnTransformer(
        [
            ("num", numbers, ["age", "income", "visits"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["region", "channel"]),
        ]
    )
    attributes = make_pipeline(columns, LogisticRegression(max_iter=1000)).fit(train[ATTRIBUTES], y_tr)
    words = tfidf_logistic(y_tr).fit(train[TEXT].tolist(), y_tr)
    return {
        "plain_attributes": attributes.predict_proba(test[ATTRIBUTES])[:, 1],
        "plain_tfidf": words.predict_proba(test[TEXT].tolist())[:, 1],
    }


def measure(rows: int = 2000, seed: int = 0, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """One table: test ROC-AUC of each stack and plain part, and the stacks' fit seconds."""
    from scipy.stats import rankdata
    from sklearn.metrics import roc_auc_score

    from engine.approaches.stacking import StackingApproach
    from engine.data.text_tables import conversation_table
    from engine.evaluate import protocol_split

    table = conversation_table(n=rows, seed=seed)
    y = table["label"].to_numpy()
    tr, te = protocol_split(y)
    train, test = table.iloc[tr], table.iloc[te]
    out: dict[str, Any] = {"rows": rows, "seed": seed, "test_rows": len(te), "positive_rate": float(y.mean())}
    out["mean_chars"] = float(table[TEXT].str.len().mean())
    scores = _plain_parts(train, test, y[tr])
    scores["rank_average"] = rankdata(scores["plain_attributes"]) + rankdata(scores["plain_tfidf"])
    for name, cols in (("stack_table", ATTRIBUTES), ("stack_text", [TEXT]), ("stack_both", [*ATTRIBUTES, TEXT])):
        started = time.perf_counter()
        model = StackingApproach(**(params or {})).fit(train[cols], y[tr])
        out[f"{name}_fit_seconds"] = round(time.perf_counter() - started, 1)
        scores[name] = model.predict_proba(test[cols])[:, 1]
    out["roc_auc"] = {name: round(float(roc_auc_score(y[te], s)), 4) for name, s in scores.items()}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m engine.benchmarks.textstack", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seeds", default="0", help="comma-separated table seeds")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    results = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        result = measure(args.rows, seed)
        results.append(result)
        print(json.dumps(result), flush=True)
        if args.json:
            args.json.write_text(json.dumps({"tables": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
