"""One rule for what a cell counts as missing (engine.data.missing_values.is_missing_text), read the same way by the
three approaches and every path in: a CSV file read by pandas, a data frame built in code (the stack's
prepare_features), the API's single-lead fast path, and the text the LLM and the embeddings write for a lead."""

import io

import numpy as np
import pandas as pd
import pytest

from engine.data.leads import prepare_features, read_table
from engine.data.text import row_fields

CELLS = ["None", "null", "N/A", "n/a", "NA", "nan", "Select", "SELECT", "  ", "", "#N/A", "<NA>", "NULL", " None "]
# what pandas' CSV reader keeps as a value is a value on every path: a region "Na", the word "none"
VALUES = ["Google", "Nonesuch", "Selected", "NAB", "0", "Na", "none", "Null"]


@pytest.mark.parametrize("cell", CELLS + VALUES)
def test_every_path_reads_a_cell_the_same_way(cell):
    expected_missing = cell in CELLS
    columns, kinds = ["Lead Source"], {"Lead Source": "categorical"}
    # the stack, on a frame built in code (the API's batch path, What-if)
    stack = prepare_features(pd.DataFrame({"Lead Source": [cell]}), columns, kinds)
    assert bool(stack["Lead Source"].isna().iloc[0]) is expected_missing
    # the API's one-lead fast path (one lead given as a mapping)
    fast = prepare_features([{"Lead Source": cell}], columns, kinds)
    assert bool(fast["Lead Source"].isna().iloc[0]) is expected_missing
    # the LLM's and the embeddings' text of the lead: a missing field is left out of it
    written = dict(row_fields(pd.Series({"Lead Source": cell, "City": "Mumbai"})))
    assert ("Lead Source" not in written) is expected_missing
    # a CSV file (pandas' reader, then the same cleaning)
    raw = read_table(io.BytesIO(f"Lead Source,City\n{cell},Mumbai\nGoogle,Pune\n".encode()), filename="l.csv")
    from_file = prepare_features(raw, columns, kinds)
    assert bool(from_file["Lead Source"].isna().iloc[0]) is expected_missing


def test_a_number_column_reads_missing_words_as_missing_not_as_bad_numbers():
    frame = pd.DataFrame({"TotalVisits": ["3", "None", "n/a", "5", "NULL"]})
    out = prepare_features(frame, ["TotalVisits"], {"TotalVisits": "numeric"})
    np.testing.assert_array_equal(out["TotalVisits"].isna().to_numpy(), [False, True, True, False, True])


def test_the_scoring_reports_column_wise_rule_equals_the_one_rule():
    """The scoring report counts numbers that did not parse column-wise (fast on 100,000 rows); it reads a cell as
    missing exactly as engine.data.missing_values.is_missing_text does."""
    from engine.data.missing_values import is_missing_text
    from engine.scoring import _unparsed_counts

    cells = [*CELLS, *VALUES, "3", "4.5", " 7 ", None, np.nan]
    for dtype in (object, "str"):
        raw = pd.DataFrame({"TotalVisits": pd.Series(cells, dtype=dtype)})
        X = prepare_features(raw, ["TotalVisits"], {"TotalVisits": "numeric"})
        expected = sum(
            1
            for v, x in zip(raw["TotalVisits"], X["TotalVisits"])
            if not pd.isna(v) and not is_missing_text(str(v)) and pd.isna(x)
        )
        assert expected == len(VALUES) - 1  # every value but "0" fails to parse
        assert _unparsed_counts(raw, X, {"TotalVisits": "numeric"}) == {"TotalVisits": expected}
