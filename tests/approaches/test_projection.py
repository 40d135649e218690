"""t-SNE and UMAP projections: shape, determinism, small inputs, bad input."""

import numpy as np
import pytest

from engine.projection import project


@pytest.fixture(scope="module")
def clusters():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2, 16)) * 4
    return np.vstack([c + rng.normal(size=(20, 16)) for c in centres]), np.repeat([0, 1], 20)


# UMAP's first call compiles numba code (about a minute on a busy 2-core machine): marked slow.
@pytest.mark.parametrize("method", ["tsne", pytest.param("umap", marks=pytest.mark.slow)])
def test_projection_shape_determinism_and_structure(clusters, method):
    X, labels = clusters
    a = project(X, method=method, seed=1)
    b = project(X, method=method, seed=1)
    assert a.shape == (40, 2) and np.isfinite(a).all()
    np.testing.assert_allclose(a, b)
    # the two clusters stay apart: each point's nearest neighbour has its label
    d = np.linalg.norm(a[:, None] - a[None], axis=-1) + np.eye(40) * 1e9
    assert (labels[d.argmin(axis=1)] == labels).mean() > 0.9


@pytest.mark.parametrize("method", ["tsne", pytest.param("umap", marks=pytest.mark.slow)])
def test_small_inputs_adjust_perplexity_and_neighbours(method):
    X = np.random.default_rng(1).normal(size=(6, 8))
    assert project(X, method=method).shape == (6, 2)
    assert project(X[:2], method=method).shape == (2, 2)
    assert project(X[:1], method=method).shape == (1, 2)


def test_bad_input():
    with pytest.raises(ValueError, match="method"):
        project(np.zeros((5, 3)), method="pca")
    with pytest.raises(ValueError, match="2-D"):
        project(np.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        project(np.full((5, 3), np.nan))
