"""Fast, exactly additive explanations of the stack: a series of models explained part by part.

The stack is ``Z -> base margins (+ raw Z columns) -> standardise -> meta network -> P``. Following
"explaining a series of models" (Chen, Lundberg & Lee 2022, the generalised DeepSHAP *rescale rule*):

1. each base model's margin gets per-encoded-column attributions ``phi[m, j]`` relative to the explanation
   background (they sum to ``margin_m(x) - mean_bg margin_m``);
2. the meta network gets exact interventional Shapley values ``Phi[m]`` over its few inputs (every
   coalition enumerated, against the background's meta inputs);
3. ``contribution_j = sum_m Phi[m] * phi[m, j] / sum_j phi[m, j]``: each base margin's share of the meta
   layer's attribution is handed to the encoded columns in proportion to their share of that margin.

Because every ``phi[m, .]`` is normalised by its own sum and the meta values sum to ``P(x) - mean_bg P``,
the contributions sum to ``P(x) - mean_bg P`` exactly (float rounding only), whatever the parts' accuracy.

What each part is, and how exact (``costs`` in ``engine.benchmarks.score`` measures each):

* logistic regression: ``w_j (z_j - mean_bg z_j)``: exact Shapley values of a linear margin.
* XGBoost: exact interventional TreeSHAP against the background (:class:`TreeTable`: per leaf, the
  Shapley value of "the leaf is reached" has a closed form in the number of path features only ``x``
  satisfies and only the background row satisfies; for trees of depth <= ``TreeTable.MAX_SLOTS`` the
  background is aggregated per leaf and pattern once, so a row costs one table look-up per leaf). It
  equals ``shap.TreeExplainer(..., feature_perturbation="interventional")`` (tested) at a small
  fraction of its cost.
* random forest: the meta network sees ``logit(P_forest)``. The forest's probability is attributed by
  Saabas path attribution (``shap.TreeExplainer.shap_values(approximate=True)``: each split's change of
  the node mean goes to the split feature), re-centred on each background row (``phi(x) - phi(b)``
  sums to ``p(x) - p(b)``) and carried through the logit by the secant slope
  ``(logit p(x) - logit p(b)) / (p(x) - p(b))`` (the rescale rule), then averaged over the background.
  **Approximate**: exact interventional TreeSHAP of 300 deep trees costs ~70-90 ms a lead against 30
  background rows (measured), too slow for whole files; Saabas costs ~0.1 ms.
* SVC (RBF): **approximate**, no exact fast path exists. Each support-vector term is
  ``exp(D_i(z))`` with ``D_i(z) = -gamma * sum_j (z_j - s_ij)^2`` additive over columns; for each
  background row the term's change is split over columns by the rescale rule through ``exp``
  (secant slope times each column's change of ``D_i``), summed over support vectors and averaged over
  the background: exact sum, a first-order split of the interactions.
* any other base model (``HistGradientBoostingClassifier``, LightGBM...: no fast path): **approximate**,
  :func:`group_effects`: each lead column's single effect on the margin against the background (its encoded
  columns taken from the row, the rest from each background row), one batched ``predict_proba`` per column;
  the rescale rule hands the model's meta share over in proportion to them (interactions are not split).
* the meta layer: exact Shapley values over its inputs (``2^k`` coalitions, ``k`` = 4 margins + raw
  columns, up to :data:`MAX_META_PLAYERS`; beyond that the raw columns play as one player whose value
  is split by their single-column effects).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np

#: The meta layer's inputs explained exactly by enumerating every coalition (2^k of them).
MAX_META_PLAYERS = 10
#: The rescale rule hands a margin's meta share ``Phi`` to the columns as ``Phi * phi / sum(phi)``; when the
#: column attributions ``phi`` nearly cancel, that ratio explodes (contributions of several probability
#: units, in opposite directions). Below this share of their total size (``|sum(phi)| < CANCEL_SHARE *
#: sum(|phi|)``) the signed ratio is taken against ``CANCEL_SHARE * sum(|phi|)`` instead, and the rest of
#: ``Phi`` is spread by ``|phi|``: each row still sums to ``Phi``, and no column gets more than a few times it.
CANCEL_SHARE = 0.5


# -- linear -----------------------------------------------------------------------------------------
def linear_attributions(coef: np.ndarray, Z: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Exact Shapley values of ``Z @ coef + b`` against the background: ``coef_j (z_j - mean_bg z_j)``."""
    return (Z - background.mean(axis=0)) * np.asarray(coef, dtype=np.float64).ravel()[None, :]


# -- trees: exact interventional TreeSHAP for shallow ensembles ------------------------------------------
def _pattern_weights(slots: int) -> np.ndarray:
    """``W[px, pb, f]``: the Shapley value for slot ``f`` of "the leaf is reached" when ``x`` satisfies the
    path's slots in bit pattern ``px`` and the background row in ``pb`` (times the leaf value).

    The leaf is reached by a hybrid row iff every slot is satisfied by whichever row supplies it, so with
    ``A`` = slots only x satisfies and ``C`` = slots only b satisfies (and every slot satisfied by one), the
    game is ``v(S) = [A in S and C disjoint from S]``: a feature of A gets ``(|A|-1)! |C|! / (|A|+|C|)!``,
    one of C minus ``|A|! (|C|-1)! / (|A|+|C|)!``, the rest nothing."""
    P = 1 << slots
    W = np.zeros((P, P, slots))
    full = P - 1
    for px in range(P):
        for pb in range(P):
            if (px | pb) != full:
                continue  # some slot neither row satisfies: the leaf is never reached
            a_set = px & ~pb
            c_set = pb & ~px
            a, c = bin(a_set).count("1"), bin(c_set).count("1")
            if a + c == 0:
                continue
            wa = math.factorial(a - 1) * math.factorial(c) / math.factorial(a + c) if a else 0.0
            wc = math.factorial(a) * math.factorial(c - 1) / math.factorial(a + c) if c else 0.0
            for f in range(slots):
                if a_set >> f & 1:
                    W[px, pb, f] = wa
                elif c_set >> f & 1:
                    W[px, pb, f] = -wc
    return W


class TreeTable:
    """Exact interventional Shapley values of a sum of shallow trees against a fixed background.

    Each leaf's path is reduced to its distinct features ("slots", at most :attr:`MAX_SLOTS`) with one
    interval per feature (``lo <= z < hi``, XGBoost's float32 comparison). For every leaf and every
    pattern of satisfied slots of the explained row, the leaf's Shapley values averaged over the
    background are tabulated once (``values[leaf, pattern, slot]``); a row then costs one look-up per leaf.
    """

    MAX_SLOTS = 6

    def __init__(
        self, leaves: list[tuple[float, list[tuple[int, float, float]]]], n_features: int, background: np.ndarray
    ):
        from scipy import sparse

        S = max([len(p) for _, p in leaves] + [1])
        if S > self.MAX_SLOTS:
            raise ValueError(f"trees with {S} distinct features on a path; TreeTable handles at most {self.MAX_SLOTS}")
        L = len(leaves)
        feat = np.zeros((L, S), dtype=np.int64)
        lo = np.full((L, S), -np.inf, dtype=np.float32)
        hi = np.full((L, S), np.inf, dtype=np.float32)
        value = np.zeros(L)
        for i, (v, path) in enumerate(leaves):
            value[i] = v
            for s, (f, a, b) in enumerate(path):
                feat[i, s], lo[i, s], hi[i, s] = f, a, b
        self.slots, self.feat, self.lo, self.hi, self.value = S, feat, lo, hi, value
        self.n_features = n_features
        bits = (1 << np.arange(S)).astype(np.int64)
        self._bits = bits
        pb = self.patterns(background)  # (B, L)
        P = 1 << S
        counts = np.zeros((L, P))
        np.add.at(counts, (np.broadcast_to(np.arange(L), pb.shape).ravel(), pb.ravel()), 1.0)
        counts /= len(background)
        W = _pattern_weights(S)  # (P, P, S)
        # table[leaf, px, slot] = value_leaf * sum_pb share_leaf(pb) * W[px, pb, slot]
        self.table = (counts @ W.transpose(1, 0, 2).reshape(P, P * S)).reshape(L, P, S) * value[:, None, None]
        # padded slots (feature 0, infinite interval) always carry zero weight: both rows satisfy them
        self._assign_t = sparse.csr_matrix(
            (np.ones(L * S), (feat.ravel(), np.arange(L * S))), shape=(n_features, L * S)
        )

    def patterns(self, Z: np.ndarray) -> np.ndarray:
        """``(rows, leaves)``: for each leaf, the bit pattern of its slots the row satisfies."""
        z = np.asarray(Z, dtype=np.float32)[:, self.feat]  # (n, L, S)
        inside = (z >= self.lo) & (z < self.hi)
        return inside.astype(np.int64) @ self._bits

    def shap_values(self, Z: np.ndarray, block: int = 256) -> np.ndarray:
        """``(rows, n_features)``; row sums = f(z) - mean_bg f (the trees' summed leaf values)."""
        L = self.table.shape[0]
        leaf = np.arange(L)[None, :]
        out = np.empty((len(Z), self.n_features))
        for start in range(0, len(Z), block):
            z = Z[start : start + block]
            got = self.table[leaf, self.patterns(z)]  # (n, L, S)
            out[start : start + block] = (self._assign_t @ got.reshape(len(z), -1).T).T
        return out

    @classmethod
    def from_xgboost(cls, booster: Any, background: np.ndarray) -> TreeTable:
        """From an XGBoost booster (gbtree, numeric splits, no missing values in the explained rows)."""
        model = json.loads(booster.save_raw("json"))
        gb = model["learner"]["gradient_booster"]
        if gb.get("name") != "gbtree":
            raise ValueError(f"TreeTable needs a gbtree booster, not {gb.get('name')!r}")
        leaves = []
        n_features = int(model["learner"]["learner_model_param"]["num_feature"])
        for tree in gb["model"]["trees"]:
            left = tree["left_children"]
            right = tree["right_children"]
            split = np.asarray(tree["split_conditions"], dtype=np.float32)
            index = tree["split_indices"]
            stack = [(0, {})]
            while stack:
                node, bounds = stack.pop()
                if left[node] == -1:
                    leaves.append((float(split[node]), [(f, lo, hi) for f, (lo, hi) in sorted(bounds.items())]))
                    continue
                f, t = int(index[node]), split[node]
                lo, hi = bounds.get(f, (np.float32(-np.inf), np.float32(np.inf)))
                # XGBoost: z < t goes left ("yes"), else right
                stack.append((left[node], {**bounds, f: (lo, min(hi, t))}))
                stack.append((right[node], {**bounds, f: (max(lo, t), hi)}))
        return cls(leaves, n_features, background)


# -- random forest: Saabas, re-centred per background row, through the logit ---------------------------
def _secant_logit(p: np.ndarray, q: np.ndarray, clip: float) -> np.ndarray:
    """Slope of ``logit(clip(.))`` between ``p`` and ``q`` (its derivative where they are equal)."""
    pc, qc = np.clip(p, clip, 1 - clip), np.clip(q, clip, 1 - clip)
    lp, lq = np.log(pc / (1 - pc)), np.log(qc / (1 - qc))
    d = p - q
    mid = np.clip((p + q) / 2, clip, 1 - clip)
    flat = np.abs(d) < 1e-12
    return np.where(flat, 1.0 / (mid * (1 - mid)), (lp - lq) / np.where(flat, 1.0, d))


class ForestSaabas:
    """Saabas path attributions of a scikit-learn forest's class-1 probability: each split's change of the
    node mean goes to the split feature. A leaf's attributions depend on the leaf alone, so they are
    tabulated once per leaf (a sparse ``(trees * nodes, features)`` matrix) and a row costs one look-up per
    tree (its leaf, from ``apply``). Row sums = ``p(x) - mean_t p_t(root)``."""

    def __init__(self, arrays: dict[str, np.ndarray], n_features: int):
        from scipy import sparse

        left, right, feature, value = arrays["left"], arrays["right"], arrays["feature"], arrays["value"]
        T, width = left.shape
        rows, cols, data = [], [], []
        for t in range(T):
            n_nodes = int((left[t] != -1).sum() * 2 + 1)  # a full binary tree: internal * 2 + 1 nodes
            acc = np.zeros((n_nodes, n_features))
            frontier = np.zeros(1, dtype=np.int64)
            while frontier.size:
                frontier = frontier[left[t, frontier] >= 0]  # internal nodes of this level
                f = feature[t, frontier]
                for side in (left, right):
                    child = side[t, frontier]
                    acc[child] = acc[frontier]
                    acc[child, f] += value[t, child] - value[t, frontier]
                frontier = np.concatenate([left[t, frontier], right[t, frontier]])
            leaves = np.flatnonzero(left[t, :n_nodes] < 0)
            r, c = np.nonzero(acc[leaves])
            rows.append(t * width + leaves[r])
            cols.append(c)
            data.append(acc[leaves[r], c] / T)
        self.width, self.trees = width, T
        self.table = sparse.csr_matrix(
            (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=(T * width, n_features)
        )

    def values(self, leaves: np.ndarray) -> np.ndarray:
        """``(rows, features)`` from the ``(rows, trees)`` leaf ids (``forest.apply``)."""
        from scipy import sparse

        n = len(leaves)
        index = (np.arange(self.trees)[None, :] * self.width + leaves).ravel()
        pick = sparse.csr_matrix(
            (np.ones(index.size), index, np.arange(0, index.size + 1, self.trees)), shape=(n, self.trees * self.width)
        )
        return (pick @ self.table).toarray()


def forest_logit_attributions(
    saabas: Callable[[np.ndarray], np.ndarray],
    proba: Callable[[np.ndarray], np.ndarray],
    Z: np.ndarray,
    background: np.ndarray,
    bg_saabas: np.ndarray,
    bg_proba: np.ndarray,
    clip: float,
) -> np.ndarray:
    """Attributions of ``logit(clip(P_forest))``: ``mean_b s(x, b) (phi(x) - phi(b))`` with Saabas ``phi``
    and the logit's secant slope ``s``; rows sum to ``logit p(x) - mean_b logit p(b)``."""
    phi = saabas(Z)
    p = proba(Z)
    s = _secant_logit(p[:, None], bg_proba[None, :], clip)  # (n, B)
    B = len(bg_proba)
    return (phi * s.sum(axis=1, keepdims=True) - s @ bg_saabas) / B


# -- SVC (RBF): rescale rule through exp per support vector and background row ----------------------------
def svc_attributions(model: Any, Z: np.ndarray, background: np.ndarray, block: int = 64) -> np.ndarray:
    """Approximate additive attributions of an RBF SVC's decision value (see the module doc); rows sum to
    ``f(x) - mean_bg f``."""
    S = np.asarray(model.support_vectors_, dtype=np.float64)
    alpha = np.asarray(model.dual_coef_[0], dtype=np.float64)
    gamma = float(model._gamma)
    s2 = (S * S).sum(axis=1)

    def D(A):  # (n, SV): -gamma ||a - s_i||^2
        return -gamma * np.maximum((A * A).sum(axis=1)[:, None] + s2[None, :] - 2.0 * (A @ S.T), 0.0)

    Db = D(background)  # (B, SV)
    kb = np.exp(Db)
    B = len(background)
    out = np.empty((len(Z), Z.shape[1]))
    for start in range(0, len(Z), block):
        x = Z[start : start + block]
        Dx = D(x)
        kx = np.exp(Dx)
        dD = Dx[:, None, :] - Db[None, :, :]  # (n, B, SV)
        dk = kx[:, None, :] - kb[None, :, :]
        flat = np.abs(dD) < 1e-9
        r = alpha * np.where(flat, np.exp((Dx[:, None, :] + Db[None, :, :]) / 2), dk / np.where(flat, 1.0, dD))
        R = r.sum(axis=2)  # (n, B)
        RS = (r.reshape(-1, len(alpha)) @ S).reshape(len(x), B, -1)  # (n, B, d)
        x2, b2 = x * x, background * background
        # phi_j(x, b) = -gamma [ (x_j^2 - b_j^2) R - 2 (x_j - b_j) (r @ S)_j ], averaged over b
        term1 = x2 * R.sum(axis=1, keepdims=True) - R @ b2
        term2 = x * RS.sum(axis=1) - np.einsum("nbd,bd->nd", RS, background)
        out[start : start + block] = -gamma * (term1 - 2.0 * term2) / B
    return out


# -- any other model: single-column effects against the background ----------------------------------------
def group_effects(
    margin: Callable[[np.ndarray], np.ndarray],
    Z: np.ndarray,
    background: np.ndarray,
    groups: list[list[int]],
    budget: int = 1_000_000,
) -> np.ndarray:
    """``(rows, encoded columns)``: for each group of encoded columns (one lead column), ``mean_b margin(b with
    the group from z) - mean_b margin(b)``, placed on the group's first column (the stack sums a lead column's
    encoded columns). Any model: ``margin`` is called on batches of hybrid rows (at most ``budget`` cells)."""
    n, d = Z.shape
    B = len(background)
    base = float(np.mean(margin(background)))
    out = np.zeros((n, d))
    step = max(1, budget // max(B * d, 1))
    for start in range(0, n, step):
        z = Z[start : start + step]
        for g in groups:
            hybrid = np.repeat(background[None, :, :], len(z), axis=0)  # (rows, B, d)
            hybrid[:, :, g] = z[:, None, g]
            values = np.asarray(margin(hybrid.reshape(-1, d)), dtype=np.float64).reshape(len(z), B)
            out[start : start + len(z), g[0]] = values.mean(axis=1) - base
    return out


# -- the meta layer ---------------------------------------------------------------------------------------
def coalition_weights(k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``2^k`` coalitions as a boolean ``(2^k, k)`` matrix and the ``(2^k, k)`` matrix ``W`` with
    Shapley values ``= v @ W`` for coalition values ``v``."""
    masks = ((np.arange(1 << k)[:, None] >> np.arange(k)[None, :]) & 1).astype(bool)
    size = masks.sum(axis=1)
    w = np.array([math.factorial(s) * math.factorial(k - s - 1) / math.factorial(k) for s in range(k)])
    W = np.where(masks, w[np.maximum(size - 1, 0)][:, None], -w[np.minimum(size, k - 1)][:, None])
    return masks, W


def meta_shapley(
    forward: Callable[[np.ndarray], np.ndarray],
    M: np.ndarray,
    M_bg: np.ndarray,
    players: list[list[int]] | None = None,
    budget: int = 2_000_000,
) -> np.ndarray:
    """Exact interventional Shapley values of ``forward`` against the rows of ``M_bg``, one per player
    (``players``: lists of columns of ``M`` that enter together; default one player per column), by
    enumerating every coalition; rows sum to ``forward(m) - mean forward(M_bg)``."""
    k_cols = M.shape[1]
    players = players if players is not None else [[j] for j in range(k_cols)]
    masks, W = coalition_weights(len(players))
    expand = np.zeros((len(players), k_cols), dtype=bool)
    for p, cols in enumerate(players):
        expand[p, cols] = True
    col_masks = (masks.astype(np.int64) @ expand.astype(np.int64)) > 0  # (C, k_cols)
    C, B = len(masks), len(M_bg)
    step = max(1, budget // (C * B))
    out = np.empty((len(M), len(players)))
    for start in range(0, len(M), step):
        m = M[start : start + step]
        hybrid = np.where(col_masks[None, :, None, :], m[:, None, None, :], M_bg[None, None, :, :])
        v = forward(hybrid.reshape(-1, k_cols)).reshape(len(m), C, B).mean(axis=2)
        out[start : start + step] = v @ W
    return out


def single_effects(
    forward: Callable[[np.ndarray], np.ndarray], M: np.ndarray, M_bg: np.ndarray, cols: list[int]
) -> np.ndarray:
    """``(rows, len(cols))``: ``mean_b forward(b with column c from m) - mean_b forward(b)`` for each c."""
    base = forward(M_bg).mean()
    out = np.empty((len(M), len(cols)))
    for i, c in enumerate(cols):
        hybrid = np.repeat(M_bg[None, :, :], len(M), axis=0)
        hybrid[:, :, c] = M[:, None, c]
        out[:, i] = forward(hybrid.reshape(-1, M.shape[1])).reshape(len(M), -1).mean(axis=1) - base
    return out


def rescale(Phi: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Hand ``Phi`` (n,) to the columns in proportion to ``phi`` (n, d): ``Phi * phi / phi.sum()`` (the rescale
    rule) where the attributions do not cancel; bounded where they do (:data:`CANCEL_SHARE`), evenly where
    ``phi`` is all zero. Each row of the result sums to ``Phi``."""
    total = phi.sum(axis=1)
    size = np.abs(phi).sum(axis=1)
    floor = CANCEL_SHARE * size
    denominator = np.where(np.abs(total) >= floor, total, np.where(total < 0, -floor, floor))
    ratio = np.divide(Phi, denominator, out=np.zeros_like(Phi, dtype=float), where=denominator != 0)
    out = phi * ratio[:, None]
    rest = Phi - out.sum(axis=1)  # zero where the rescale rule applies as it is
    share = np.where(size[:, None] > 0, np.abs(phi) / np.where(size > 0, size, 1.0)[:, None], 1.0 / phi.shape[1])
    return out + share * rest[:, None]
