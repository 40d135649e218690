"""Lexical evidence for the transcript approach, built from scikit-learn parts.

* :func:`tfidf_logistic` — TF-IDF of word 1-2-grams (sublinear tf, ``min_df=2``) into a logistic regression whose
  C is chosen by stratified cross-validation on ROC-AUC (``LogisticRegressionCV``): the plain lexical baseline
  (``peer_tfidf`` in ``bench transcripts``) and one half of the hybrid head.
* :func:`hybrid_head` — the ``classifier_type="hybrid"`` head of the embeddings approach: a
  ``StackingClassifier`` of a logistic regression on the (scaled) embeddings and :func:`tfidf_logistic` on the
  text, joined by a logistic regression on their out-of-fold probabilities (scikit-learn's own
  ``cross_val_predict`` inside the stack, so the joining model never sees a base model's in-sample scores).
* :func:`hybrid_frame` — the head's input: the embedding (and metadata) features as numeric columns beside the
  text column, so one ``predict_proba`` of the whole head reads both (occlusion explanations included).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TEXT = "transcript"
#: The Cs a cross-validated logistic regression chooses from (embeddings: scaled dense features).
EMBEDDING_CS = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0]
#: The Cs for TF-IDF features (sparse, unit-length rows: larger C than for scaled dense features).
TFIDF_CS = [0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]


def _smallest(y, default: int) -> int:
    return int(np.bincount(np.asarray(y).astype(int), minlength=2).min()) if y is not None else default


def _folds(y, folds: int, seed: int, smallest: int | None = None):
    from sklearn.model_selection import StratifiedKFold

    smallest = _smallest(y, folds) if smallest is None else smallest
    return StratifiedKFold(n_splits=max(2, min(folds, smallest)), shuffle=True, random_state=seed)


def _logistic(Cs: list[float], fixed_C: float, y, seed: int, folds: int, smallest: int | None = None):
    """LogisticRegressionCV over ``Cs`` when each class has at least 3 rows to cross-validate on, else a
    LogisticRegression with ``fixed_C`` (a handful of examples: nothing to choose C on)."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

    smallest = _smallest(y, folds) if smallest is None else smallest
    if smallest < 3:
        return LogisticRegression(C=fixed_C, max_iter=3000)
    return LogisticRegressionCV(
        Cs=Cs, cv=_folds(y, folds, seed, smallest), scoring="roc_auc", max_iter=3000, random_state=seed
    )


def tfidf_vectorizer():
    """Word 1-2-grams, sublinear tf, in at least two documents (``min_df=2``)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, dtype=np.float32)


def tfidf_logistic(y=None, seed: int = 42, folds: int = 5, column: str | None = None, smallest: int | None = None):
    """TF-IDF 1-2-grams into a logistic regression with cross-validated C. Takes a list of texts, or (with
    ``column``) a frame whose ``column`` holds them. ``smallest``: the rows of the rarer class it will be fitted
    on, when not those of ``y`` (inside the stack's folds)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    vectorizer = tfidf_vectorizer()
    first = ("tfidf", vectorizer) if column is None else ("tfidf", ColumnTransformer([("text", vectorizer, column)]))
    return Pipeline([first, ("logistic", _logistic(TFIDF_CS, 10.0, y, seed, folds, smallest))])


def embedding_logistic(y=None, seed: int = 42, folds: int = 5, smallest: int | None = None):
    """Scaled numeric columns (the embeddings, and metadata features when present) into a logistic regression
    with cross-validated C; reads only the numeric columns of a :func:`hybrid_frame`."""
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    numbers = ColumnTransformer([("embeddings", StandardScaler(), make_column_selector(dtype_include=np.number))])
    return Pipeline([("scale", numbers), ("logistic", _logistic(EMBEDDING_CS, 1.0, y, seed, folds, smallest))])


def hybrid_head(y=None, seed: int = 42, folds: int = 5):
    """Embeddings and TF-IDF, each into its own cross-validated logistic regression, stacked on out-of-fold
    probabilities by a logistic regression. Fits and predicts on a :func:`hybrid_frame`. The halves choose C
    by cross-validation inside each of the stack's folds (on the rarer class's rows there), or take a fixed C
    when those are fewer than three."""
    from sklearn.ensemble import StackingClassifier
    from sklearn.linear_model import LogisticRegression

    outer = _folds(y, folds, seed)
    smallest = _smallest(y, folds)
    inner = smallest - -(-smallest // outer.n_splits)  # the rarer class's rows left in a fold's training part
    return StackingClassifier(
        estimators=[
            ("embeddings", embedding_logistic(y, seed, folds, smallest=inner)),
            ("tfidf", tfidf_logistic(y, seed, folds, column=TEXT, smallest=inner)),
        ],
        final_estimator=LogisticRegression(C=1.0, max_iter=1000),
        cv=outer,
        stack_method="predict_proba",
        n_jobs=1,
    )


def hybrid_frame(features: np.ndarray, texts: list[str]) -> pd.DataFrame:
    """The hybrid head's input: ``features`` as numeric columns ``f0, f1, ...`` and the texts as ``transcript``."""
    features = np.asarray(features)
    if len(features) != len(texts):
        raise ValueError(f"{len(features)} feature rows but {len(texts)} texts; pass one text per row")
    frame = pd.DataFrame(features, columns=[f"f{i}" for i in range(features.shape[1])])
    frame[TEXT] = ["" if t is None else str(t) for t in texts]
    return frame
