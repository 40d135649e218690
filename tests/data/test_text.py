"""engine.data.text: one readable sentence per filled field, shared by LoRA and embeddings."""

import re

import numpy as np
import pandas as pd
import pytest

from engine.data.text import format_value, frame_to_texts, is_missing, row_to_text


def test_known_columns_read_naturally_and_numbers_are_clean():
    row = pd.Series({"Lead Source": "Google", "Total Time Spent on Website": 674.0})
    assert row_to_text(row) == ("The lead source is Google. Total time spent on the website is 674 seconds.")


def test_unknown_column_uses_generic_sentence():
    assert row_to_text({"favourite colour": "blue", "score": 3}) == "The favourite colour is blue. The score is 3."


@pytest.mark.parametrize(
    "value,expected",
    [
        (674.0, "674"),
        (2.5, "2.5"),
        (2.3333333, "2.33"),
        (np.float64(12.0), "12"),
        (np.int64(7), "7"),
        (True, "Yes"),
        (0.0, "0"),
        ("  Email  Opened ", "Email Opened"),
    ],
)
def test_format_value(value, expected):
    assert format_value(value) == expected


def test_missing_fields_are_left_out():
    row = {
        "Lead Source": "Google",
        "City": "Select",
        "Country": np.nan,
        "Specialization": None,
        "Last Activity": "",
        "TotalVisits": float("nan"),
        "Lead Origin": pd.NA,
    }
    assert row_to_text(row) == "The lead source is Google."
    assert all(is_missing(v) for v in ["Select", " select ", "", np.nan, None, pd.NA])
    assert not any(is_missing(v) for v in ["No", 0, 0.0, False])


def test_column_order_is_the_given_order_and_restricts_fields():
    row = {"Lead Source": "Google", "Lead Origin": "API", "Country": "India"}
    text = row_to_text(row, columns=["Country", "Lead Origin", "not there"])
    assert text == "The country is India. The lead origin is API."


def test_frame_to_texts_matches_row_to_text_and_compact_style_is_shorter():
    df = pd.DataFrame(
        {
            "Lead Origin": ["API", "Landing Page Submission"],
            "TotalVisits": [5.0, np.nan],
            "Page Views Per Visit": [2.5, 1.0],
            "City": ["Mumbai", "Select"],
        }
    )
    texts = frame_to_texts(df)
    assert texts == [row_to_text(df.iloc[i]) for i in range(len(df))]
    assert texts[1] == "The lead origin is Landing Page Submission. Page views per visit is 1."
    compact = frame_to_texts(df, style="compact")
    assert compact[0] == "origin: API; visits: 5; pages per visit: 2.5; city: Mumbai."
    assert all(len(c) < len(t) for c, t in zip(compact, texts))


def test_frame_to_texts_on_real_leads(leads_csv):
    df = pd.read_csv(leads_csv, nrows=50)
    texts = frame_to_texts(df.drop(columns=["Converted"]))
    assert len(texts) == 50 and all(texts)
    bad = re.compile(r"\bSelect\b|\bnan\b|\d\.0\b")
    assert not [t for t in texts if bad.search(t)]


def test_bad_input_is_explained():
    with pytest.raises(TypeError, match="one row"):
        row_to_text(["a", "b"])
    with pytest.raises(ValueError, match="style"):
        row_to_text({"a": 1}, style="poem")
