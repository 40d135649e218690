"""The stack's fast explanations stay on the probability scale: where a base model's column attributions
nearly cancel, the rescale rule's ratio used to explode (one field at +3.5 probability, i.e. "+345 points")."""

import numpy as np
from support import SMALL_STACK

from engine.approaches import _fast_explain as fx
from engine.data.demo import demo_leads
from engine.data.leads import load_leads
from engine.pipeline import build_approach


def test_cancelling_attributions_are_handed_out_bounded_and_additive():
    Phi = np.array([0.2, -0.1, 0.05])
    phi = np.array([[1.0, -0.999, 0.0], [0.3, 0.2, 0.1], [0.0, 0.0, 0.0]])
    out = fx.rescale(Phi, phi)
    np.testing.assert_allclose(out.sum(axis=1), Phi, atol=1e-15)
    assert np.abs(out[0]).max() <= 3 * abs(Phi[0])  # the signed ratio would give 0.2 / 0.001 = 200
    np.testing.assert_allclose(out[1], Phi[1] * phi[1] / phi[1].sum())  # no cancelling: the rescale rule itself
    np.testing.assert_allclose(out[2], [0.05 / 3] * 3)


def test_a_small_stack_explains_every_lead_within_the_probability_scale():
    table = load_leads(demo_leads(n=600, seed=0))
    model = build_approach("stacking", SMALL_STACK).fit(table.X, table.y)
    X = table.X.iloc[:60]
    contributions = model.explain(X)
    assert contributions["contribution"].abs().max() <= 1.0
    sums = contributions.groupby("row")["contribution"].sum().to_numpy()
    np.testing.assert_allclose(sums, model.predict_proba(X)[:, 1] - model.expected_value(), atol=1e-9)
