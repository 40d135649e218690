"""2-D coordinates of embeddings for plots: t-SNE (scikit-learn) or UMAP (umap-learn).

``project(embeddings, method="tsne"|"umap", seed=42, **kw) -> (n, 2) array``. Deterministic for a
given seed. Small inputs are handled: t-SNE's perplexity and UMAP's ``n_neighbors`` are lowered to
fit ``n``; one or two points are placed without fitting anything.
"""
from __future__ import annotations

import numpy as np

METHODS = ("tsne", "umap")


def _trivial(n: int) -> np.ndarray:
    return np.array([[0.0, 0.0], [1.0, 0.0]][:n], dtype=np.float64)


def project(embeddings, method: str = "tsne", seed: int = 42, **kw) -> np.ndarray:
    """Project ``embeddings`` (n, d) to (n, 2) with t-SNE or UMAP (extra keywords go to the method)."""
    X = np.asarray(embeddings, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (rows x dimensions), got shape {X.shape}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if not np.isfinite(X).all():
        raise ValueError("embeddings contain NaN or infinite values; embed the texts again")
    n = X.shape[0]
    if n <= 2:
        return _trivial(n)
    if X.shape[1] == 2 and not kw.get("force", False):
        return X.astype(np.float64)
    kw.pop("force", None)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(kw.pop("perplexity", 30.0))
        perplexity = max(1.0, min(perplexity, (n - 1) / 3.0))
        tsne = TSNE(n_components=2, perplexity=perplexity, random_state=seed, init=kw.pop("init", "pca"),
                    metric=kw.pop("metric", "cosine"), **kw)
        return tsne.fit_transform(X).astype(np.float64)
    import umap

    n_neighbors = int(kw.pop("n_neighbors", 15))
    n_neighbors = max(2, min(n_neighbors, n - 1))
    init = kw.pop("init", "spectral" if n > n_neighbors + 2 else "random")
    reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, random_state=seed, metric=kw.pop("metric", "cosine"),
                        init=init, n_jobs=1, **kw)
    return np.asarray(reducer.fit_transform(X), dtype=np.float64)
