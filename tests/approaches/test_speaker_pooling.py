"""``pooling="speakers"``: a call's turns read from any ``Name:`` prefix, the customer's side and the agent's side
embedded apart and put side by side; hostile transcripts (no prefixes, one speaker, CRLF, unicode, empty, 1 MB)
and explanations that still point at sentences."""

import time

import numpy as np
import pandas as pd
import pytest

from engine.approaches.speaker_turns import agent_of, parse_turns, speaker_pieces, speaker_sides
from engine.data.demo_transcripts import long_calls
from engine.data.transcripts import load_transcripts
from engine.pipeline import build_approach

CALL = "Agent: Hello, thanks for taking the call.\nCustomer: We need this fixed this quarter.\nAgent: Great."


def _approach(pooling: str, **kwargs):
    return build_approach("embeddings", dict(pooling=pooling, fine_tune=False, backend="torch", **kwargs))


def test_turns_and_sides_from_any_name_prefix():
    assert parse_turns(CALL) == [
        ("Agent", "Hello, thanks for taking the call."),
        ("Customer", "We need this fixed this quarter."),
        ("Agent", "Great."),
    ]
    assert speaker_sides(CALL) == ("We need this fixed this quarter.", "Hello, thanks for taking the call.\nGreat.")
    # names, not roles: whoever opens the call is the agent; CRLF, blank lines, an empty turn, a continued line
    named = "Maya: Hi Grace, Maya here.\r\n\r\nGrace:\r\nGrace: Budget is approved.\r\nwe can sign today\r\nMaya: Good."
    assert speaker_sides(named) == ("Budget is approved.\nwe can sign today", "Hi Grace, Maya here.\nGood.")
    assert speaker_sides(named) == speaker_sides(named.replace("\r\n", "\n"))
    # a role word decides over the order; unicode names; a link and a time are not speakers
    assert agent_of(["Client", "Sales Rep"]) == "Sales Rep"
    assert agent_of(["Customer", "Zoë"]) == "Zoë"
    assert speaker_sides("José Ñúñez: ¿Hola?\nSpeaker 2: see https://x.io at 12:30") == (
        "see https://x.io at 12:30",
        "¿Hola?",
    )


@pytest.mark.parametrize(
    "text, sides",
    [
        ("no speaker prefixes at all\njust words", None),
        ("", None),
        ("   \r\n\r\n", None),
        ("Agent: only the agent speaks\nAgent: still me", ("", "only the agent speaks\nstill me")),
        ("Customer: only the customer", ("only the customer", "")),
    ],
)
def test_hostile_calls_give_sides_or_none(text, sides):
    assert speaker_sides(text) == sides
    pieces = speaker_pieces([text])[0]
    assert len(pieces) == 2  # every call has both pieces: a missing side is the whole call
    if sides is None:
        assert pieces == [text, text]
    else:
        assert pieces == [side or text for side in sides]


def test_speaker_embeddings_are_each_side_pooled_apart_and_fall_back_to_the_mean_path():
    mean, speakers = _approach("mean"), _approach("speakers")
    customer, agent = speaker_sides(CALL)
    got = speakers.embed([CALL, "no prefixes here, just a note", "Agent: nobody answers"], "generic")
    assert got.shape == (3, 768)
    np.testing.assert_allclose(got[0, :384], mean.embed([customer], "generic")[0], atol=1e-5)
    np.testing.assert_allclose(got[0, 384:], mean.embed([agent], "generic")[0], atol=1e-5)
    whole = mean.embed(["no prefixes here, just a note"], "generic")[0]
    np.testing.assert_allclose(got[1], np.concatenate([whole, whole]), atol=1e-5)  # today's path, twice
    np.testing.assert_allclose(got[2, :384], mean.embed(["Agent: nobody answers"], "generic")[0], atol=1e-5)
    np.testing.assert_allclose(got[2, 384:], mean.embed(["nobody answers"], "generic")[0], atol=1e-5)
    assert speakers.embed([], "generic").shape == (0, 768)
    with pytest.raises(ValueError, match="pooling must be one of"):
        build_approach("embeddings", dict(pooling="customer")).fit(["a b", "c d"], np.array([0, 1]))


def test_a_one_megabyte_call_is_split_in_linear_time():
    turn = "Customer: We need the rollout before April, and the budget is approved. Émilie agrees 🙂\r\n"
    text = turn * (1_000_000 // len(turn))
    started = time.perf_counter()
    customer, agent = speaker_sides(text)
    assert time.perf_counter() - started < 10
    assert agent == "" and customer.count("\n") == text.count("\r\n") - 1
    assert speaker_pieces([text])[0][1] == text  # the silent agent's side is the whole call


def test_speaker_pooling_trains_scores_and_explains_sentences(tmp_path):
    from engine.approaches.registry import load_approach

    table = load_transcripts(long_calls(30, seed=3, filler=(6, 10)))
    model = _approach("speakers", classifier_type="hybrid")
    model.fit(table.X, table.y)
    p = model.predict_proba(table.X.iloc[:5])
    assert p.shape == (5, 2) and np.allclose(p.sum(axis=1), 1)
    model.save(tmp_path / "m")
    again = load_approach(tmp_path / "m")
    assert again.pooling == "speakers"
    np.testing.assert_allclose(again.predict_proba(table.X.iloc[:5]), p, atol=1e-6)
    call = pd.DataFrame(
        {
            "transcript": [
                "Agent: Shall we book the demo for Friday at ten?\r\nCustomer: Yes, Friday at ten works, "
                "send the invite.\r\nCustomer: The price is fine for us."
            ]
        }
    )
    table = model.explain(call)
    assert list(table["value"]) and len(table) == 3  # one row a sentence, each with its speaker
    assert all(v.startswith(("Agent: ", "Customer: ")) for v in table["value"])
    assert table["contribution"].abs().max() > 0  # taking a sentence out moves the score
