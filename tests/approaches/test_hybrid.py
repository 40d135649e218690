"""The hybrid head of the embeddings approach (MiniLM embeddings and TF-IDF of the words, stacked on out-of-fold
probabilities) and the TF-IDF peer, with the real shipped MiniLM: fit, save/load, explanations from the whole head,
and the errors for texts it cannot read."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from engine.approaches.lexical import hybrid_frame, tfidf_logistic
from engine.approaches.registry import load_approach
from engine.data.demo_transcripts import demo_transcripts
from engine.data.transcripts import load_transcripts
from engine.pipeline import build_approach


@pytest.fixture(scope="module")
def calls():
    train = load_transcripts(demo_transcripts(120, seed=11))
    test = load_transcripts(demo_transcripts(60, seed=12, phrase_pool="heldout"))
    return train.X, train.y, test.X, test.y


@pytest.fixture(scope="module")
def hybrid(calls):
    X, y, _, _ = calls
    return build_approach("embeddings", dict(classifier_type="hybrid", fine_tune=False, seed=0, backend="torch")).fit(
        X, y
    )


def test_hybrid_reads_both_kinds_of_evidence_and_ranks_unseen_wordings(hybrid, calls):
    _, _, Xt, yt = calls
    stack = hybrid.classifiers_["generic"]
    assert [name for name, _ in stack.estimators] == ["embeddings", "tfidf"]
    weights = stack.final_estimator_.coef_[0]
    assert weights.shape == (2,) and np.all(weights > 0), weights  # each half counts, in the right direction
    p = hybrid.predict_proba(Xt, embeddings="generic")[:, 1]
    assert p.shape == (len(yt),) and np.all((p > 0) & (p < 1))
    assert roc_auc_score(yt, p) > 0.7  # held-out wordings: far above a coin toss


def test_hybrid_saves_and_loads_with_identical_probabilities(hybrid, calls, tmp_path):
    _, _, Xt, _ = calls
    hybrid.save(tmp_path / "h")
    assert (tmp_path / "h" / "classifier_generic.joblib").exists()
    loaded = load_approach(tmp_path / "h")
    assert loaded.classifier_type == "hybrid"
    np.testing.assert_array_equal(loaded.predict_proba(Xt.iloc[:5]), hybrid.predict_proba(Xt.iloc[:5]))


def test_hybrid_explanations_come_from_the_whole_head(hybrid, calls):
    """Each sentence's contribution is p(call) - p(call without it), both from the hybrid's own predict_proba:
    the TF-IDF half sees the sentence go too (an embeddings-only occlusion would give other numbers)."""
    from engine.approaches.embeddings import split_sentences

    _, _, Xt, _ = calls
    row = Xt.iloc[[0]]
    table = hybrid.explain(row, embeddings="generic")
    units = split_sentences(row["transcript"].iloc[0])
    assert sorted(table["value"]) == sorted(units)
    said = dict(zip(table["value"], table["contribution"]))
    full = hybrid.predict_proba(["\n".join(units)], embeddings="generic")[0, 1]
    once = [k for k, unit in enumerate(units) if units.count(unit) == 1]
    assert len(once) >= 3
    for k in (once[0], once[len(once) // 2], once[-1]):
        without = hybrid.predict_proba(["\n".join(units[:k] + units[k + 1 :])], embeddings="generic")[0, 1]
        assert said[units[k]] == pytest.approx(full - without, abs=1e-5)
    # and they differ from what the embeddings half alone would say
    half = hybrid.classifiers_["generic"].named_estimators_["embeddings"]
    k = once[0]
    emb = hybrid.embed(["\n".join(units), "\n".join(units[:k] + units[k + 1 :])], "generic")
    p_half = half.predict_proba(hybrid_frame(emb, ["", ""]))[:, 1]
    assert not np.isclose(p_half[0] - p_half[1], said[units[k]])


def test_hybrid_refuses_texts_with_no_shared_words(calls):
    X, y, _, _ = calls
    junk = X.iloc[:40].copy()
    junk["transcript"] = [f"{chr(0x4E00 + i)}" for i in range(40)]  # one distinct single character each
    with pytest.raises(ValueError, match="hybrid.*no word.*Fix: .*classifier_type='logistic'"):
        build_approach("embeddings", dict(classifier_type="hybrid", fine_tune=False)).fit(junk, y[:40])


def test_tfidf_peer_learns_the_words_and_cross_validates_c(calls):
    X, y, Xt, yt = calls
    model = tfidf_logistic(y, seed=0).fit(list(X["transcript"]), y)
    vocabulary = model[0].vocabulary_
    assert any(" " in term for term in vocabulary)  # bigrams
    assert model[0].sublinear_tf and model[0].min_df == 2
    assert model[-1].C_[0] in model[-1].Cs_
    assert roc_auc_score(yt, model.predict_proba(list(Xt["transcript"]))[:, 1]) > 0.6
    with pytest.raises(ValueError, match="len|samples|inconsistent"):
        model.fit(list(X["transcript"]), y[:-1])
