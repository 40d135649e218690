"""The stack's explanations, exactly additive: ``explain_matrix`` (``(rows, columns)`` contributions) and
``explain_frame`` (the ``row, feature, value, contribution`` table), for a fitted
:class:`engine.approaches.stacking.StackingApproach`.

Both methods explain P(row) - mean P(background) (``stack.background_``, encoded training rows):

* ``"fast"``: the stack part by part, combined by the rescale rule (:mod:`engine.approaches._fast_explain`,
  which holds the maths and says which parts are exact); a few ms a lead.
* ``"permutation"``: sampled Shapley values of the whole stack (interventional, antithetic orders). The
  preprocessing is column-separable, so masking a feature is swapping its encoded columns: every hybrid row of
  every order is scored in one batched call (0.1-0.7 s a lead).
"""

from __future__ import annotations

import time
import weakref

import numpy as np
import pandas as pd

from engine.approaches import _fast_explain as fx
from engine.approaches import _stack_parts as parts
from engine.approaches._stack_text import cell_texts
from engine.approaches.base import contribution_frame

#: ``explain`` methods: ``fast`` (part by part, rescale rule) and ``permutation`` (sampled Shapley values).
EXPLAIN_METHODS = ("fast", "permutation")
#: what the fast path precomputes once per fitted stack and background (kept beside the stack, not on it)
_FAST_PARTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def check_method(method: str) -> str:
    if method not in EXPLAIN_METHODS:
        raise ValueError(f"Unknown explain method {method!r}; choose one of {list(EXPLAIN_METHODS)}")
    return method


def value_texts(column: pd.Series) -> list[str]:
    """A column's values as ``explain`` shows them: ``missing``, ``3.5`` (``:g``), else ``str``."""
    return [
        parts.MISSING
        if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v)
        else (f"{v:g}" if isinstance(v, (float, np.floating)) else str(v))
        for v in column.to_numpy(dtype=object)
    ]


def explain_matrix(
    stack, Z: np.ndarray, method: str, n_permutations: int, costs: dict | None = None, batch_size: int = 1000
) -> np.ndarray:
    """Contributions of the encoded rows ``Z`` as a ``(rows, len(stack.columns_))`` array; each row sums to
    ``P(row) - stack.expected_value()``. ``costs`` receives the seconds of each part (fast path)."""
    if check_method(method) == "permutation":
        # the same orders for every row: a lead's explanation does not depend on the rows beside it
        rows = [_shapley(stack, z, n_permutations, np.random.default_rng(stack.seed)) for z in Z]
        return np.array(rows).reshape(len(Z), len(stack.columns_))
    out = np.empty((len(Z), len(stack.columns_)))
    for start in range(0, len(Z), max(int(batch_size), 1)):
        out[start : start + batch_size] = _fast_matrix(stack, Z[start : start + batch_size], costs)
    return out


#: characters of a text column's value shown in an explanation table (the reason quotes its words instead)
SHOWN_TEXT = 200
#: terms a text column's reason quotes
QUOTED_TERMS = 3


def _shorten(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SHOWN_TEXT else flat[: SHOWN_TEXT - 1] + "…"


def _quoted(terms: list[tuple[str, float]]) -> list[str]:
    """Up to :data:`QUOTED_TERMS` terms, strongest first, skipping one that shares a word with a chosen one
    (``'budget approved'`` and not also ``'budget'``) and any under a quarter of the first one's weight. A two-word term counts with the weight
    of its words among ``terms`` (the phrase is what a person reads, its words' pull comes with it)."""
    weight = dict(terms)
    merged = [(t, w + sum(weight.get(p, 0.0) for p in t.split()) if " " in t else w) for t, w in terms]
    merged.sort(key=lambda tw: -abs(tw[1]))
    chosen: list[str] = []
    for term, w in merged:
        words = set(term.split())
        if chosen and abs(w) < 0.25 * abs(merged[0][1]):  # far weaker than the first: noise, not a reason
            break
        if any(words & set(t.split()) for t in chosen):
            continue
        chosen.append(term)
        if len(chosen) == QUOTED_TERMS:
            break
    return chosen


def text_words(stack, X: pd.DataFrame, contrib: np.ndarray) -> dict[str, list[str]]:
    """For each text column of the stack (``plan_["text"]``), per row what its reason says of the text:
    ``mentions 'budget approved', 'next week'`` (the terms that moved the text model's logit most in the
    direction of the column's contribution: coefficient x the row's tf-idf weight), ``is blank``, or, when no
    word present pushes that way, ``mentions none of the words that raise it`` / ``... lower it``."""
    texts = list(getattr(stack, "plan_", {}).get("text", []))
    if not texts:
        return {}
    ct = stack.features_.named_steps["columns"]
    model = ct.named_transformers_["text"]
    out = {}
    for j, col in enumerate(texts):
        cells = X[col].to_numpy(dtype=object)
        found = model.terms(j, cells, k=4 * QUOTED_TERMS)
        sign = contrib[:, stack.columns_.index(col)]
        phrases = []
        for cell, terms, s in zip(cells, found, sign):
            if not "".join(cell_texts([cell])).strip():
                phrases.append("is blank")
                continue
            quoted = _quoted(terms["up"] if s >= 0 else terms["down"])
            if quoted:
                phrases.append("mentions " + ", ".join(f"'{t}'" for t in quoted))
            else:
                phrases.append(f"mentions none of the words that {'lower' if s >= 0 else 'raise'} it")
        out[col] = phrases
    return out


def explain_frame(
    columns: list[str], X: pd.DataFrame, contrib: np.ndarray, words: dict[str, list[str]] | None = None
) -> pd.DataFrame:
    """The long table (one row per lead and column, in ``columns`` order) of :meth:`explain`. With ``words``
    (:func:`text_words`: per text column, a phrase per row), a ``words`` column carries them (None for the
    other columns) and a text column's ``value`` is shortened to :data:`SHOWN_TEXT` characters."""
    words = words or {}
    n, c = contrib.shape
    values = np.empty((n, c), dtype=object)
    for j, col in enumerate(columns):
        values[:, j] = value_texts(X[col])
        if col in words:
            values[:, j] = [_shorten(v) for v in values[:, j]]
    frame = pd.DataFrame(
        {
            "row": np.repeat(np.arange(n), c),
            "feature": np.tile(np.asarray(columns, dtype=object), n),
            "value": values.ravel(),
            "contribution": contrib.ravel(),
        }
    )
    frame = contribution_frame(frame)
    if words:
        said = np.full(len(frame), None, dtype=object)
        rows, features = frame["row"].to_numpy(), frame["feature"].to_numpy(dtype=object)
        for col, phrases in words.items():
            mask = features == col
            said[mask] = np.asarray(phrases, dtype=object)[rows[mask]]
        frame["words"] = said
    return frame


# -- permutation Shapley values of the whole stack -----------------------------------------------------------
def _shapley(stack, z: np.ndarray, n_perm: int, rng: np.random.Generator) -> np.ndarray:
    """Permutation Shapley values of one encoded row against ``background_`` (one value per column of
    ``columns_``), in probability units."""
    groups = [stack.groups_[c] for c in stack.columns_]
    active = [i for i, g in enumerate(groups) if g]
    d = len(active)
    contrib = np.zeros(len(groups))
    if d == 0:
        return contrib
    bg = stack.background_
    B = len(bg)
    n_perm = max(2, n_perm + (n_perm % 2))
    orders = []
    for _ in range(n_perm // 2):
        perm = rng.permutation(d)
        orders += [perm, perm[::-1]]
    # states: for each order, after adding k features (k = 1..d-1); k=0 and k=d are shared
    states = []
    for perm in orders:
        mask = np.zeros(bg.shape[1], dtype=bool)
        for k in range(d - 1):
            mask[groups[active[perm[k]]]] = True
            states.append(mask.copy())
    rows = np.empty((len(states) * B + 2 * B, bg.shape[1]))
    for s, mask in enumerate(states):
        block = bg.copy()
        block[:, mask] = z[mask]
        rows[s * B : (s + 1) * B] = block
    rows[len(states) * B : len(states) * B + B] = bg
    rows[len(states) * B + B :] = z
    values = stack._proba_matrix(rows)
    v = values[: len(states) * B].reshape(len(states), B).mean(axis=1).reshape(len(orders), d - 1)
    v0 = values[len(states) * B : len(states) * B + B].mean()
    vd = values[len(states) * B + B :].mean()
    path = np.hstack([np.full((len(orders), 1), v0), v, np.full((len(orders), 1), vd)])
    deltas = np.diff(path, axis=1)  # (orders, d): gain of the k-th added feature
    for o, perm in enumerate(orders):
        for k in range(d):
            contrib[active[perm[k]]] += deltas[o, k]
    return contrib / len(orders)


# -- the fast path: part by part, the rescale rule -------------------------------------------------------
def _fast_parts(stack) -> dict:
    """What the fast path precomputes once per background (rebuilt after load or a new background): for each
    base model, a function from encoded rows to its margin's attributions over the encoded columns."""
    cache = _FAST_PARTS.get(stack)
    if cache is not None and cache["background"] is stack.background_:
        return cache
    bg = stack.background_
    explainers = {}
    for name in stack.base_names_:
        model, kind = stack.models_[name], stack.base_kinds_[name]
        explainers[name] = _part_explainer(stack, name, model, kind, bg)
    cache = {"background": bg, "parts": explainers, "M_bg": stack._meta_inputs(stack._margins(bg), bg)}
    _FAST_PARTS[stack] = cache
    return cache


def _part_explainer(stack, name: str, model, kind: str, bg: np.ndarray):
    """``Z -> (rows, encoded columns)`` attributions of one base model's margin against the background."""
    if kind == "linear":
        return lambda Z: fx.linear_attributions(model.coef_, Z, bg)
    if kind == "svc":
        return lambda Z: fx.svc_attributions(model, Z, bg)
    if kind == "xgboost":
        booster = stack._xgb_boosters[name][1]  # the n_jobs copy (set up by fit and load)
        try:
            return fx.TreeTable.from_xgboost(booster, bg).shap_values
        except ValueError:  # trees deeper than the table takes: shap's own interventional TreeSHAP (slower)
            import shap

            explainer = shap.TreeExplainer(booster, data=bg, feature_perturbation="interventional", model_output="raw")
            return lambda Z: np.asarray(explainer.shap_values(Z, check_additivity=False))
    if kind == "forest":
        table = fx.ForestSaabas(parts.forest_arrays(model), bg.shape[1])

        def saabas(Z: np.ndarray) -> np.ndarray:
            return table.values(parts.forest_leaves(model, Z))

        bg_saabas, bg_forest = saabas(bg), parts.forest_p(model, bg)
        return lambda Z: fx.forest_logit_attributions(
            saabas, lambda A: parts.forest_p(model, A), Z, bg, bg_saabas, bg_forest, parts.CLIP
        )
    # any other classifier: the effect of each lead column's encoded columns alone, against the background
    groups = [stack.groups_[c] for c in stack.columns_ if stack.groups_[c]]
    return lambda Z: fx.group_effects(lambda A: stack._margin(name, model, A), Z, bg, groups)


def _fast_matrix(stack, Z: np.ndarray, costs: dict | None = None) -> np.ndarray:
    """Contributions by the fast path (see :mod:`engine.approaches._fast_explain`), ``(rows, columns_)``."""
    costs = costs if costs is not None else {}

    def timed(part, fn, *args):
        t = time.perf_counter()
        out = fn(*args)
        costs[part] = costs.get(part, 0.0) + time.perf_counter() - t
        return out

    cached = timed("setup", _fast_parts, stack)
    phi = {name: timed(name, explain, Z) for name, explain in cached["parts"].items()}
    t = time.perf_counter()
    M = stack._meta_inputs(stack._margins(Z), Z)
    raw = list(stack.meta_raw_index_)
    n_base = len(stack.base_names_)
    forward = stack._meta_forward
    if n_base + len(raw) <= fx.MAX_META_PLAYERS:
        Phi = fx.meta_shapley(forward, M, cached["M_bg"])
        Phi_raw = Phi[:, n_base:]
    else:  # too many raw columns for every coalition: they play as one, split by single-column effects
        players = [[m] for m in range(n_base)] + [list(range(n_base, n_base + len(raw)))]
        Phi = fx.meta_shapley(forward, M, cached["M_bg"], players=players)
        effects = fx.single_effects(forward, M, cached["M_bg"], players[-1])
        Phi_raw = np.column_stack([fx.rescale(Phi[:, n_base], effects)])
    costs["meta"] = costs.get("meta", 0.0) + time.perf_counter() - t
    t = time.perf_counter()
    enc = np.zeros_like(Z, dtype=np.float64)
    for m, name in enumerate(stack.base_names_):
        enc += fx.rescale(Phi[:, m], phi[name])
    for i, j in enumerate(raw):
        enc[:, j] += Phi_raw[:, i]
    groups = np.zeros((Z.shape[1], len(stack.columns_)))
    for c, col in enumerate(stack.columns_):
        groups[stack.groups_[col], c] = 1.0
    out = enc @ groups
    costs["combine"] = costs.get("combine", 0.0) + time.perf_counter() - t
    return out
