"""The ``text`` column kind: free text (notes, call transcripts) told from many-level categories and ids on several
generated tables (tests/text_tables.py), and hostile text cells."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from text_tables import columns, conversation, lead_table

from engine.data.leads import infer_kinds, kinds_given_else_inferred, load_leads, read_table


@pytest.mark.parametrize("n, seed", [(600, 0), (600, 1), (2000, 2)])
def test_every_column_read_as_its_kind(n, seed):
    cols = columns(n, seed)
    kinds = infer_kinds(pd.DataFrame({name: values for name, (values, _) in cols.items()}))
    assert {name: kinds[name] for name in cols} == {name: want for name, (_, want) in cols.items()}


def test_given_kinds_win_and_only_the_rest_is_inferred():
    cols = columns(600, 3)
    frame = pd.DataFrame({name: values for name, (values, _) in cols.items()})
    text = next(name for name, (_, want) in cols.items() if want == "text")
    other = next(name for name, (_, want) in cols.items() if want != "text")
    kinds = kinds_given_else_inferred(frame, {text: "categorical", other: "text", "absent": "numeric"})
    assert list(kinds) == [str(c) for c in frame.columns]  # every column of the frame, nothing else
    assert kinds[text] == "categorical" and kinds[other] == "text"
    inferred = infer_kinds(frame)
    assert {c: k for c, k in kinds.items() if c not in (text, other)} == {
        c: k for c, k in inferred.items() if c not in (text, other)
    }
    assert kinds_given_else_inferred(frame, None) == inferred
    # nothing left to infer: the given kinds alone, with no reading of the cells
    assert kinds_given_else_inferred(frame[[text]], {text: "identifier"}) == {text: "identifier"}


def test_short_repeated_notes_do_not_hide_the_long_ones():
    rng = np.random.default_rng(4)
    short = ["called, no answer"] * 540
    long = [" ".join(rng.choice(["asked", "for", "a", "quote", "on", "the", "annual", "plan"], 9)) for _ in range(60)]
    assert infer_kinds(pd.DataFrame({"Notes": short + long}))["Notes"] == "text"
    # the same short notes alone are a category: nothing in them is prose
    assert infer_kinds(pd.DataFrame({"Notes": short[:300] + ["left voicemail"] * 300}))["Notes"] == "binary"
    repeated = ["called, no answer", "left voicemail", "no answer", "wrong number"] * 150
    assert infer_kinds(pd.DataFrame({"Notes": repeated}))["Notes"] == "categorical"


def test_a_long_level_repeated_is_a_category_not_text():
    levels = [f"Enterprise plan number {i} with annual billing and premium support" for i in range(80)]
    values = [levels[i % 80] for i in range(2000)]
    assert infer_kinds(pd.DataFrame({"Plan": values}))["Plan"] == "high_cardinality"


def test_ids_emails_and_urls():
    n = 500
    kinds = infer_kinds(
        pd.DataFrame(
            {
                "Contact": [f"first.last{i}@corp{i % 9}.example" for i in range(n)],
                "Website": [f"https://company{i % 25}.example" for i in range(n)],  # 25 companies: a category
                "Profile": [f"www.example.org/people/{i}" for i in range(n)],
                "City": [f"{w}ville" for w in np.resize(["North", "South", "East", "West", "Lake"], n)],
                "Surname": [f"Name{chr(65 + i % 26)}{chr(65 + i // 26 % 26)}x" for i in range(n)],
            }
        )
    )
    assert kinds["Contact"] == "identifier" and kinds["Profile"] == "identifier"
    assert kinds["Website"] == "categorical" and kinds["City"] == "categorical"
    # distinct plain words (no digit, no @, no address) are many levels of a category, never an id dropped unseen
    assert kinds["Surname"] == "high_cardinality"


def test_a_transcript_column_of_a_csv_is_text(tmp_path):
    path = tmp_path / "crm_export.csv"
    lead_table(300, seed=1).to_csv(path, index=False)
    raw = read_table(path)
    assert raw["Call transcript"].str.len().min() > 1000 and raw["Call transcript"].str.contains("\n").all()
    table = load_leads(path, target="label")
    assert table.kinds["Call transcript"] == "text" and table.kinds["City"] == "high_cardinality"
    assert table.dropped["Lead Ref"].startswith("identifier")
    assert table.X["Call transcript"].iloc[0].startswith("Agent: ")


def test_kind_test_reads_a_sample_of_a_large_column():
    from engine.data.leads.kinds import _clean_frame, _kind

    rng = np.random.default_rng(0)
    n = 200_000
    calls = [conversation(rng, (2, 4)) for _ in range(500)]
    notes = [f"{calls[i % 500]} (call {i})" for i in range(n)]  # a note per lead
    frame = pd.DataFrame({"Notes": notes, "City": np.resize(columns(300)["City"][0], n)})
    clean, _ = _clean_frame(frame)  # the cleaning's cost is not the kind test's
    started = time.perf_counter()
    kinds = {col: _kind(clean[col], col) for col in clean.columns}
    took = time.perf_counter() - started
    assert kinds == {"Notes": "text", "City": "high_cardinality"}
    assert took < 15, f"the kind test took {took:.1f} s on {n:,} rows"


# -- hostile text ------------------------------------------------------------------------------------------------------
def test_empty_and_blank_text_is_an_empty_column():
    frame = pd.DataFrame({"Notes": ["", "   ", "\t", None] * 25, "Visits": range(100)})
    assert infer_kinds(frame)["Notes"] == "empty"


def test_one_megabyte_of_one_word():
    rng = np.random.default_rng(1)
    notes = [" ".join(rng.choice(["quote", "asked", "for", "the", "plan", "price", "soon"], 12)) for _ in range(200)]
    huge = "a" * 1_000_000
    started = time.perf_counter()
    kinds = infer_kinds(pd.DataFrame({"Notes": [huge] + notes[1:], "Stage": [huge] + ["new", "open"] * 99 + ["new"]}))
    assert time.perf_counter() - started < 10
    assert kinds == {"Notes": "text", "Stage": "categorical"}
    words = "word " * 200_000  # 1 MB of one word repeated: prose, but one cell is no text column on its own
    assert infer_kinds(pd.DataFrame({"Stage": [words] + ["new", "open"] * 50}))["Stage"] == "categorical"


def test_binary_cells_do_not_break_the_kinds():
    blobs = [bytes([i % 256, 0, 255, 7]) * 20 for i in range(300)]
    kinds = infer_kinds(pd.DataFrame({"Blob": blobs, "Raw": ["\x00\x01\x02\xff" * 10 + str(i) for i in range(300)]}))
    assert kinds["Blob"] in ("identifier", "high_cardinality") and kinds["Raw"] == "identifier"


def test_formulas_stay_text_and_are_never_evaluated(tmp_path):
    formulas = ['=HYPERLINK("http://evil.example","click")', "=1+1", "@SUM(A1:A9)", "+cmd|' /C calc'!A0", "-2+3"]
    frame = pd.DataFrame(
        {"Note": np.resize(formulas, 100), "Visits": np.arange(100) % 7, "Converted": np.arange(100) % 2}
    )
    path = tmp_path / "formulas.csv"
    frame.to_csv(path, index=False)
    table = load_leads(path)
    assert table.kinds["Note"] == "categorical"
    assert set(table.X["Note"]) == set(formulas)  # kept as written: "=1+1" is not 2, "-2+3" not a number


def test_numbers_written_as_text_are_numbers_in_training_and_scoring():
    from engine.data.leads import prepare_features

    amounts = ["950", "1,200", "15,000", "1,250,000.50", "3,5", "0,125", " 42 "] * 20
    frame = pd.DataFrame({"Amount": amounts, "Converted": np.arange(len(amounts)) % 2})
    table = load_leads(frame)
    assert table.kinds["Amount"] == "numeric"
    assert table.X["Amount"].iloc[:7].tolist() == [950.0, 1200.0, 15000.0, 1250000.5, 3.5, 0.125, 42.0]
    # scoring reads a new file's cells, and one lead of an API body, the same way
    new = prepare_features(pd.DataFrame({"Amount": ["1,200", "3,5"]}), ["Amount"], table.kinds)
    assert new["Amount"].tolist() == [1200.0, 3.5]
    assert prepare_features([{"Amount": "15,000"}], ["Amount"], table.kinds)["Amount"].tolist() == [15000.0]


def test_phone_numbers_with_spaces_are_identifiers():
    phones = [f"+1 (555) {i // 100:03d} {i % 10000:04d}" for i in range(300)]
    sizes = [f"{i % 40 + 1} - {i % 40 + 50} employees" for i in range(300)]  # spaced digits, a category
    kinds = infer_kinds(pd.DataFrame({"Phone": phones, "Company size": sizes}))
    assert kinds == {"Phone": "identifier", "Company size": "categorical"}
