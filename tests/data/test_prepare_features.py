import numpy as np
import pandas as pd

from engine.data.demo import demo_leads
from engine.data.leads import load_leads, prepare_features


def test_new_leads_are_shaped_like_the_training_table():
    table = load_leads(demo_leads(n=300, seed=1))
    raw = demo_leads(n=300, seed=1).drop(columns=["Converted"])
    again = prepare_features(raw, list(table.X.columns), table.kinds)
    pd.testing.assert_frame_equal(again, table.X, check_dtype=False)
    for col in table.X.columns:
        assert pd.api.types.is_numeric_dtype(again[col]) == pd.api.types.is_numeric_dtype(table.X[col]), col


def test_form_values_are_cleaned_and_unknown_fields_ignored():
    kinds = {"TotalVisits": "numeric", "Lead Source": "categorical", "Do Not Email": "binary"}
    frame = pd.DataFrame(
        [
            {"TotalVisits": "abc", "Lead Source": "Select", "Do Not Email": "Yes", "Other": 1},
            {"TotalVisits": "4", "Lead Source": " Google ", "Do Not Email": "No"},
        ]
    )
    out = prepare_features(frame, list(kinds), kinds)
    assert list(out.columns) == list(kinds)
    assert np.isnan(out.loc[0, "TotalVisits"]) and out.loc[1, "TotalVisits"] == 4.0
    assert pd.isna(out.loc[0, "Lead Source"]) and out.loc[1, "Lead Source"] == "Google"
    assert out["Do Not Email"].tolist() == ["Yes", "No"]
    blank = prepare_features(pd.DataFrame([{}]), list(kinds), kinds)
    assert blank.isna().all(axis=None) and pd.api.types.is_numeric_dtype(blank["TotalVisits"])


def _reference_prepare(frame, columns, kinds):
    """prepare_features as it was before it parsed each distinct value once: every cell on its own."""
    import numpy as np
    import pandas as pd

    from engine.data.leads import _as_number, _clean_strings

    frame = frame.reindex(columns=list(columns))
    out = {}
    for col in frame.columns:
        s = frame[col].reset_index(drop=True)
        if s.isna().all():
            out[col] = pd.Series(np.nan, index=s.index, dtype=float if kinds.get(col) == "numeric" else "str")
            continue
        cleaned = _clean_strings(s)
        numbers = cleaned.map(lambda v: np.nan if isinstance(v, float) else _as_number(v))
        numbers = pd.to_numeric(numbers, errors="coerce").astype(float)
        as_numbers = kinds.get(col) == "numeric" or (
            kinds.get(col) == "binary" and numbers.notna().sum() == cleaned.notna().sum()
        )
        out[col] = numbers if as_numbers else cleaned
    return pd.DataFrame(out, index=range(len(frame)))


def test_prepare_features_equals_the_cell_by_cell_reference_on_hostile_values():
    import numpy as np
    import pandas as pd

    from engine.data.demo import demo_leads
    from engine.data.leads import load_leads, prepare_features

    table = load_leads(demo_leads(n=300, seed=1))
    raw = demo_leads(n=300, seed=2).astype(object)
    hostile = [
        " 12 ",
        "3,5",
        "Select",
        "",
        "inf",
        "-inf",
        "nan",
        "1e400",
        "abc",
        None,
        np.nan,
        7,
        2.5,
        True,
        "  Google ",
        "select",
        "0",
        "1",
        "Yes",
    ]
    rng = np.random.default_rng(0)
    for col in raw.columns:
        picks = rng.random(len(raw)) < 0.2
        raw.loc[picks, col] = [hostile[i] for i in rng.integers(0, len(hostile), picks.sum())]
    numeric = demo_leads(n=50, seed=3)  # numeric dtypes as pandas reads a file
    numeric.loc[0, "TotalVisits"] = np.inf
    for frame in (raw, numeric):
        got = prepare_features(frame, list(table.X.columns), table.kinds)
        want = _reference_prepare(frame, list(table.X.columns), table.kinds)
        pd.testing.assert_frame_equal(got, want)


def test_codes_read_as_missing_in_any_spelling_of_the_number():
    """New rows' cells as files spell them: text, padded, decimal comma, junk; the flag marks the code only."""
    kinds = {"TotalVisits": "numeric", "TotalVisits was 999": "binary", "Lead Source": "categorical"}
    frame = pd.DataFrame(
        {
            "TotalVisits": ["999", " 999 ", "999,0", "abc", "3", None, 999],
            "Lead Source": ["a", "b", "c", "d", "e", "f", "999"],
        }
    )
    out = prepare_features(frame, list(kinds), kinds, {"TotalVisits": [999]})
    assert list(out.columns) == list(kinds)
    assert out["TotalVisits was 999"].tolist() == [1, 1, 1, 0, 0, 0, 1]
    assert out["TotalVisits"].isna().tolist() == [True, True, True, True, False, True, True]
    assert out["Lead Source"].tolist() == ["a", "b", "c", "d", "e", "f", "999"]  # text columns are never coded
    assert prepare_features(frame, list(kinds), kinds, {}).equals(prepare_features(frame, list(kinds), kinds))
