import numpy as np
import pandas as pd

from engine.data.leads import load_leads, prepare_features
from engine.data.demo import demo_leads


def test_new_leads_are_shaped_like_the_training_table():
    table = load_leads(demo_leads(n=300, seed=1))
    raw = demo_leads(n=300, seed=1).drop(columns=["Converted"])
    again = prepare_features(raw, list(table.X.columns), table.kinds)
    pd.testing.assert_frame_equal(again, table.X, check_dtype=False)
    for col in table.X.columns:
        assert pd.api.types.is_numeric_dtype(again[col]) == pd.api.types.is_numeric_dtype(table.X[col]), col


def test_form_values_are_cleaned_and_unknown_fields_ignored():
    kinds = {"TotalVisits": "numeric", "Lead Source": "categorical", "Do Not Email": "binary"}
    frame = pd.DataFrame([{"TotalVisits": "abc", "Lead Source": "Select", "Do Not Email": "Yes", "Other": 1},
                          {"TotalVisits": "4", "Lead Source": " Google ", "Do Not Email": "No"}])
    out = prepare_features(frame, list(kinds), kinds)
    assert list(out.columns) == list(kinds)
    assert np.isnan(out.loc[0, "TotalVisits"]) and out.loc[1, "TotalVisits"] == 4.0
    assert pd.isna(out.loc[0, "Lead Source"]) and out.loc[1, "Lead Source"] == "Google"
    assert out["Do Not Email"].tolist() == ["Yes", "No"]
    blank = prepare_features(pd.DataFrame([{}]), list(kinds), kinds)
    assert blank.isna().all(axis=None) and pd.api.types.is_numeric_dtype(blank["TotalVisits"])
