"""A free-text column (a rep's call notes, a conversation) as one feature of the stack.

:class:`TextScore` is a scikit-learn transformer for the ``text`` part of the stack's ColumnTransformer
(:func:`engine.approaches._stack_parts.make_features`): for each text column, TF-IDF of word 1-2-grams (the
transcript approach's own vectorizer, :func:`engine.approaches.lexical.tfidf_vectorizer`: sublinear tf,
``min_df=2``; the fitted model keeps at most ``max_features`` terms, though the counting pass of a fit holds every
distinct 1-2-gram of its rows) into a logistic regression; its output is the regression's logit, one column per
text column.

* ``fit_transform(X, y)`` returns **out-of-fold** logits (``cross_val_predict`` of the regression over
  ``StratifiedKFold(cv, shuffle=True, random_state=seed)``): a training row's feature never comes from a model
  that saw its own label, so the base models that read it learn what the text is worth on unseen rows. The
  regression's C is chosen from :data:`TEXT_CS` by the out-of-fold ROC-AUC of those same folds.
* ``transform(X)`` uses the regression fitted on every training row.

The vocabulary and IDF are fitted on the transformer's training rows (no labels); inside the stack's own out-of-fold
loop the whole transformer is refitted on each fold's training part, so a test row is never seen.

Each cell is read as text (missing is empty; ``bytes`` decode as UTF-8 with replacement) and only its first
:data:`MAX_CHARS` characters are read, so a 1 MB cell costs what a 20,000-character one does.

:meth:`TextScore.terms` gives, for a row, the terms that moved its logit most either way (the regression's
coefficient times the row's TF-IDF weight): what a reason quotes (``Notes: mentions 'budget approved'``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from engine.approaches.lexical import tfidf_vectorizer
from engine.data.text import valid_utf8

#: characters of each cell that are read (the rest is ignored): bounds the time of a 1 MB cell
MAX_CHARS = 20_000
#: terms kept per text column (the most frequent): bounds the fitted model's size and scoring cost
MAX_FEATURES = 200_000
#: the regression's C is chosen among these (TF-IDF rows are unit length: larger C than for scaled features)
TEXT_CS = (0.3, 1.0, 3.0, 10.0)


def cell_texts(values: Any, max_chars: int = MAX_CHARS) -> list[str]:
    """One column's cells as text: missing (None, NaN, NA) is ``""``, ``bytes`` decode as UTF-8 (bad bytes
    replaced), anything else is ``str`` (a lone surrogate made ``?``: :func:`engine.data.text.valid_utf8`); each cut to its first ``max_chars`` characters."""
    out = []
    for v in np.asarray(values, dtype=object).ravel():
        if v is None or (isinstance(v, float) and v != v) or v.__class__.__name__ in ("NAType", "NaTType"):
            out.append("")
        elif isinstance(v, (bytes, bytearray)):
            out.append(bytes(v[: 4 * max_chars]).decode("utf-8", errors="replace")[:max_chars])
        else:
            out.append(valid_utf8(str(v)[:max_chars]))
    return out


def _columns(X) -> tuple[list[str], list[list[str]], int]:
    """Names, texts per column and row count of a frame or a 2-D array."""
    import pandas as pd

    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
        cols = [X.iloc[:, j].to_numpy(dtype=object) for j in range(X.shape[1])]
        return names, cols, len(X)
    arr = np.asarray(X, dtype=object)
    if arr.ndim == 1:
        arr = arr[:, None]
    return [f"x{j}" for j in range(arr.shape[1])], [arr[:, j] for j in range(arr.shape[1])], arr.shape[0]


class TextScore(TransformerMixin, BaseEstimator):
    """Each text column -> the logit of a TF-IDF logistic regression (see the module doc). ``__init__`` stores
    parameters only; fitted state: ``vectorizers_`` and ``models_`` (per column; None where a column had no
    usable words or labels of one class only: its output is 0, a constant) and ``C_``."""

    def __init__(
        self,
        max_chars: int = MAX_CHARS,
        max_features: int = MAX_FEATURES,
        Cs: tuple = TEXT_CS,
        cv: int = 5,
        seed: int = 0,
    ):
        self.max_chars = max_chars
        self.max_features = max_features
        self.Cs = Cs
        self.cv = cv
        self.seed = seed

    # -- fitting ---------------------------------------------------------------------------------------
    def _vectorize(self, texts: list[str]):
        vectorizer = tfidf_vectorizer().set_params(max_features=int(self.max_features))
        try:
            return vectorizer, vectorizer.fit_transform(texts)
        except ValueError:  # no term in two rows (empty, one word, noise): nothing to learn from
            return None, None

    def _folds(self, y: np.ndarray):
        from sklearn.model_selection import StratifiedKFold

        smallest = int(np.bincount(y, minlength=2).min())
        if smallest < 2:
            return None
        return StratifiedKFold(n_splits=max(2, min(int(self.cv), smallest)), shuffle=True, random_state=self.seed)

    @staticmethod
    def _logistic(C: float):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=float(C), max_iter=2000)

    def _fit_column(self, texts: list[str], y: np.ndarray, oof: bool) -> tuple[Any, Any, float, np.ndarray]:
        """(vectorizer, regression, C, out-of-fold logits or zeros) of one column."""
        from sklearn.metrics import roc_auc_score

        n = len(texts)
        vectorizer, T = self._vectorize(texts)
        folds = self._folds(y)
        if vectorizer is None or folds is None:
            return None, None, float("nan"), np.zeros(n)
        splits = list(folds.split(np.zeros(n), y))
        best_C, best_auc, best_oof = float(self.Cs[0]), -np.inf, np.zeros(n)
        for C in self.Cs:  # out-of-fold logits for every C; the best by ROC-AUC (the same folds) is kept
            scores = np.zeros(n)
            for train, test in splits:
                if len(np.unique(y[train])) < 2:
                    continue
                scores[test] = self._logistic(C).fit(T[train], y[train]).decision_function(T[test])
            auc = roc_auc_score(y, scores) if len(np.unique(y)) == 2 else 0.5
            if auc > best_auc + 1e-9:
                best_C, best_auc, best_oof = float(C), auc, scores
        model = self._logistic(best_C).fit(T, y)
        return vectorizer, model, best_C, (best_oof if oof else np.zeros(n))

    def _fit(self, X, y, oof: bool) -> np.ndarray:
        if y is None:
            raise ValueError("TextScore needs the labels: it fits a model of the text")
        names, cols, n = _columns(X)
        y = np.asarray(y).astype(int).ravel()
        if len(y) != n:
            raise ValueError(f"{n} rows of text but {len(y)} labels")
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = len(names)
        self.vectorizers_, self.models_, self.C_ = [], [], []
        out = np.zeros((n, len(names)))
        for j, values in enumerate(cols):
            vectorizer, model, C, scores = self._fit_column(cell_texts(values, self.max_chars), y, oof)
            self.vectorizers_.append(vectorizer)
            self.models_.append(model)
            self.C_.append(C)
            out[:, j] = scores
        return out

    def fit(self, X, y=None) -> TextScore:
        self._fit(X, y, oof=False)
        return self

    def fit_transform(self, X, y=None, **fit_params) -> np.ndarray:
        """Out-of-fold logits of the training rows (each from a regression that did not see that row)."""
        return self._fit(X, y, oof=True)

    # -- using it --------------------------------------------------------------------------------------
    def _matrix(self, j: int, values) -> Any:
        return self.vectorizers_[j].transform(cell_texts(values, self.max_chars))

    def transform(self, X) -> np.ndarray:
        """The logit of each column's regression fitted on every training row."""
        names, cols, n = _columns(X)
        if len(cols) != len(self.models_):
            raise ValueError(f"TextScore was fitted on {len(self.models_)} text column(s), got {len(cols)}")
        out = np.zeros((n, len(cols)))
        for j, values in enumerate(cols):
            if self.models_[j] is not None:
                out[:, j] = self.models_[j].decision_function(self._matrix(j, values))
        return out

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        names = self.feature_names_in_ if input_features is None else input_features
        return np.asarray([str(c) for c in names], dtype=object)

    def terms(self, j: int, values, k: int = 3) -> list[dict[str, list[tuple[str, float]]]]:
        """Per row of ``values`` (cells of text column ``j``), the ``k`` terms that raised (``"up"``) and lowered
        (``"down"``) its logit most: ``(term, coefficient x tf-idf weight)``, largest first."""
        n = len(np.asarray(values, dtype=object).ravel())
        if self.models_[j] is None:
            return [{"up": [], "down": []} for _ in range(n)]
        T = self._matrix(j, values).tocsr()
        coef = self.models_[j].coef_[0]
        vocab = self.vectorizers_[j].get_feature_names_out()
        out = []
        for r in range(n):
            idx = T.indices[T.indptr[r] : T.indptr[r + 1]]
            w = T.data[T.indptr[r] : T.indptr[r + 1]] * coef[idx]
            order = np.argsort(-w)
            up = [(str(vocab[idx[i]]), float(w[i])) for i in order[:k] if w[i] > 0]
            down = [(str(vocab[idx[i]]), float(w[i])) for i in order[::-1][:k] if w[i] < 0]
            out.append({"up": up, "down": down})
        return out
