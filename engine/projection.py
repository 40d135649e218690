"""2-D coordinates of embeddings for plots: t-SNE (scikit-learn) or UMAP (umap-learn).

``project(embeddings, method="tsne"|"umap", seed=42, **kw) -> (n, 2) array``. Deterministic for a
given seed. Small inputs are handled: t-SNE's perplexity and UMAP's ``n_neighbors`` are lowered to
fit ``n``; one or two points are placed without fitting anything.
"""

from __future__ import annotations

import numpy as np

from engine.storage import CorruptFile, read_json

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
        tsne = TSNE(
            n_components=2,
            perplexity=perplexity,
            random_state=seed,
            init=kw.pop("init", "pca"),
            metric=kw.pop("metric", "cosine"),
            **kw,
        )
        return tsne.fit_transform(X).astype(np.float64)
    import umap

    n_neighbors = int(kw.pop("n_neighbors", 15))
    n_neighbors = max(2, min(n_neighbors, n - 1))
    init = kw.pop("init", "spectral" if n > n_neighbors + 2 else "random")
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=n_neighbors,
        random_state=seed,
        metric=kw.pop("metric", "cosine"),
        init=init,
        n_jobs=1,
        **kw,
    )
    return np.asarray(reducer.fit_transform(X), dtype=np.float64)


# -- maps stored with a run ---------------------------------------------------------------------------------
PROJECTIONS_FILE = "projections.json"
#: rows a stored map shows (the Embeddings page's default number of points)
PROJECTION_ROWS = 100
ENCODERS = ("generic", "fine_tuned")


def projection_sample(n_rows: int, n: int = PROJECTION_ROWS, seed: int = 0) -> np.ndarray:
    """Positions (sorted) of the rows a map of ``n`` points shows: the first ``n`` of a fixed shuffle."""
    return np.sort(np.random.default_rng(seed).permutation(int(n_rows))[: int(n)])


def embed_both(model, frame, progress=None, batch: int = 16) -> dict[str, np.ndarray]:
    """Generic and fine-tuned embeddings of ``frame``'s rows (``model.embed(rows, which=...)``), ``batch`` rows at
    a time; ``progress(done, total)`` counts rows of both encoders."""
    if not hasattr(model, "embed"):
        raise AttributeError(f"{type(model).__name__} has no embed(X, which='generic'|'fine_tuned') method")
    total, done, out = 2 * len(frame), 0, {}
    for which in ENCODERS:
        parts = []
        for start in range(0, len(frame), batch):
            parts.append(np.asarray(model.embed(frame.iloc[start : start + batch], which=which), dtype=np.float32))
            done += len(parts[-1])
            if progress:
                progress(done, total)
        out[which] = np.vstack(parts) if parts else np.zeros((0, 2), np.float32)
    return out


def store_projections(run, model, X, row_ids=None, n: int = PROJECTION_ROWS, methods=METHODS, seed: int = 0, log=None):
    """Compute the maps the Embeddings page shows by default and store them in the run folder as
    ``projections.json``: the ``n`` rows of :func:`projection_sample` (their positions in ``X`` and row ids), and
    for each of ``methods`` the 2-D coordinates of their generic and fine-tuned embeddings. Returns the file's
    path, or None when the model cannot embed (``log`` gets one line saying why; the run itself is fine and the
    page then computes the maps)."""
    import time

    started = time.perf_counter()
    try:
        positions = projection_sample(len(X), min(n, len(X)), seed)
        vectors = embed_both(model, X.iloc[positions])
        seconds = {"embed": round(time.perf_counter() - started, 2)}
        maps = {}
        for method in methods:
            t = time.perf_counter()
            maps[method] = {
                which: np.round(project(vectors[which], method=method, seed=seed), 5).tolist() for which in ENCODERS
            }
            seconds[method] = round(time.perf_counter() - t, 2)
    except Exception as exc:  # noqa: BLE001 - a run without maps is still a run
        if log:
            log(f"embedding maps not stored ({type(exc).__name__}: {exc}); the Embeddings page will compute them")
        return None
    ids = np.arange(len(X)) if row_ids is None else np.asarray(row_ids)
    path = run.save_json(
        PROJECTIONS_FILE,
        {
            "version": 1,
            "seed": seed,
            "positions": positions.tolist(),
            "row_ids": [str(r) for r in ids[positions]],
            "maps": maps,
            "seconds": seconds,
        },
    )
    if log:
        log(
            f"embedding maps ({', '.join(methods)}) of {len(positions)} rows stored in "
            f"{time.perf_counter() - started:.1f} s"
        )
    return path


def load_projections(run) -> dict | None:
    """The maps stored with ``run`` (see :func:`store_projections`), or None when there are none or the file is
    damaged (the page then computes them)."""
    f = run.path / PROJECTIONS_FILE
    if not f.exists():
        return None
    try:
        payload = read_json(f, dict)
        n = len(payload["positions"])
        maps = {}
        for method, by in payload["maps"].items():
            maps[method] = {}
            for which in ENCODERS:
                coords = np.asarray(by[which], dtype=np.float64)
                if coords.shape != (n, 2) or not np.isfinite(coords).all():
                    raise ValueError(f"{method} {which}: shape {coords.shape}")
                maps[method][which] = coords
        if len(payload["row_ids"]) != n:
            raise ValueError("row ids do not match the positions")
    except (CorruptFile, KeyError, TypeError, ValueError):
        return None
    return {
        **payload,
        "positions": [int(p) for p in payload["positions"]],
        "row_ids": [str(r) for r in payload["row_ids"]],
        "maps": maps,
    }
