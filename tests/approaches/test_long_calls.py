"""Long two-speaker calls (issue 24's regression hunt): the generator, and the generic embeddings of long calls
checked against an independent path, sentence-transformers' own ``encode`` of each window, so a change in how
long calls are read, chunked or pooled fails here."""

import numpy as np
import pytest

from engine.data.demo_transcripts import demo_transcripts, long_calls
from engine.data.transcripts import load_transcripts
from engine.pipeline import build_approach


def test_long_calls_are_long_deterministic_and_keep_the_demo_outcome():
    calls = long_calls(6, seed=4, filler=(30, 40))
    assert calls == long_calls(6, seed=4, filler=(30, 40))
    assert [c["label"] for c in calls] == [c["label"] for c in demo_transcripts(6, seed=4)]
    for call in calls:
        text = call["transcript"]
        assert "\r\n" in text and len(text) > 3000  # CRLF; several encoder windows long
        speakers = {line.split(":", 1)[0] for line in text.split("\r\n") if ":" in line}
        assert len(speakers) == 2
        assert {"age", "income", "region", "tenure_years"} <= set(call["metadata"])
    assert any(any(ord(ch) > 127 for ch in c["transcript"]) for c in calls)
    assert {c["transcript"].split(":", 1)[0] for c in long_calls(20, seed=4)} - {"Agent", "Customer"}  # names too
    assert "\r\n" not in long_calls(2, crlf=False)[0]["transcript"]


@pytest.mark.parametrize("kwargs", [{"speakers": "robots"}, {"filler": (5, 2)}, {"filler": (-1, 3)}])
def test_long_calls_refuse_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="speakers must be|filler must be"):
        long_calls(2, **kwargs)


def test_generic_embeddings_of_long_calls_match_sentence_transformers_per_window():
    """Every token of a long call lands in a window the encoder reads whole (no silent truncation at 256),
    and each call's embedding is the normalised mean of sentence-transformers' encode of its windows; CRLF
    line ends give the same embedding as LF."""
    from engine.approaches.embeddings_parts import base_model_path, load_sentence_model

    table = load_transcripts(long_calls(10, seed=5, filler=(40, 60)))
    texts = list(table.X["transcript"])
    approach = build_approach("embeddings", dict(fine_tune=False, backend="torch"))
    got = approach.embed(texts, "generic")

    st = load_sentence_model(base_model_path(), cached=False)  # a model object of its own
    tokenizer = st.tokenizer
    chunked = approach._chunk_many(texts)
    assert all(len(chunks) >= 4 for chunks in chunked)  # long: several windows each
    for text, chunks in zip(texts, chunked):
        n_tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        sizes = [len(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in chunks]
        assert max(sizes) <= approach.chunk_tokens - 2  # each window fits the encoder
        assert sum(sizes) >= n_tokens  # together they cover the call (overlapping)
        assert chunks[0][:40] == text[:40] and chunks[-1][-40:] == text.rstrip()[-40:]
    st.max_seq_length = approach.chunk_tokens
    reference = []
    for chunks in chunked:
        vectors = st.encode(chunks, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        mean = vectors.mean(axis=0)
        reference.append(mean / np.linalg.norm(mean))
    np.testing.assert_allclose(got, np.vstack(reference), atol=2e-5)

    lf = approach.embed([t.replace("\r\n", "\n") for t in texts[:3]], "generic")
    np.testing.assert_allclose(lf, got[:3], atol=2e-5)


def test_a_lone_surrogate_in_a_call_is_read_as_a_question_mark_on_every_input_path():
    """``"\\udcff"`` (junk decoded with surrogateescape, or a JSON escape without its pair) made the tokenizer raise
    a TypeError; every way a call comes in now reads it as ``?``, and the rest of the call is embedded as before."""
    import pandas as pd

    approach = build_approach("embeddings", dict(fine_tune=False, backend="torch"))
    bad = "Agent: hello \udcff there, the annual plan?\nCustomer: send it \ud800 over."
    fixed = "Agent: hello ? there, the annual plan?\nCustomer: send it ? over."
    frame = pd.DataFrame({"transcript": pd.Series([bad, "Agent: hi"], dtype=object)})
    assert approach.texts_of(bad) == [fixed]
    assert approach.texts_of([bad]) == [fixed]
    assert approach.texts_of(frame) == [fixed, "Agent: hi"]
    got = approach.embed(frame, "generic")
    want = approach.embed([fixed, "Agent: hi"], "generic")
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert np.isfinite(got).all() and np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
