"""What-if's logic in the engine (engine.whatif): the typical lead, a real lead as its file held it, the form's
fields, and one edited lead shaped and scored as each run saw its rows, agreeing with the scoring service; with the
hostile leads a form or a caller can send (unknown categories, numbers as text, NaN and infinities, not one value)."""

import math

import numpy as np
import pandas as pd
import pytest

from engine import whatif
from engine.runspec import RunSpec
from engine.scoring import load_training_profile, score_frame

CODE = 999.0
FLAG = "TotalVisits was 999"


def _coded_spec() -> RunSpec:
    """The spec of a run that read 999 in TotalVisits as missing (its flag column follows the features)."""
    return RunSpec.new(
        approach="stacking",
        columns=["Lead Source", "TotalVisits", "Pages", FLAG],
        kinds={"Lead Source": "categorical", "TotalVisits": "numeric", "Pages": "numeric", FLAG: "binary"},
        missing_values={"TotalVisits": [CODE]},
    )


def _coded_rows(coded_share: float) -> pd.DataFrame:
    """Ten leads as the run's training frame holds them: ``coded_share`` of them carried 999 (blank, flag 1)."""
    n_coded = int(round(10 * coded_share))
    visits = [np.nan] * n_coded + [2.0, 3.0, 4.0, 6.0, 6.0, 6.0, 7.0, 9.0, 10.0, 11.0][: 10 - n_coded]
    return pd.DataFrame(
        {
            "Lead Source": ["Google"] * 6 + ["Direct"] * 3 + [None],
            "TotalVisits": visits,
            "Pages": [1.5, 2.5, 2.0, 3.0, np.nan, 2.0, 2.5, 1.0, 4.0, 2.0],
            FLAG: [1.0] * n_coded + [0.0] * (10 - n_coded),
        }
    )


# -- the form ----------------------------------------------------------------------------------------------
def test_the_form_asks_the_column_not_its_flag():
    spec = _coded_spec()
    assert whatif.form_fields(spec) == ["Lead Source", "TotalVisits", "Pages"]
    options = whatif.field_options(spec, _coded_rows(0.2))
    assert options["Lead Source"] == {"values": ["Google", "Direct"]}  # the most common first
    assert options["Pages"]["median"] == pytest.approx(2.0)
    assert whatif.is_number_field(spec, "TotalVisits", options)
    assert not whatif.is_number_field(spec, "Lead Source", options)


def test_the_typical_lead_is_the_most_common_category_and_the_median_number():
    typical = whatif.typical_lead(_coded_spec(), _coded_rows(0.2))
    assert typical["Lead Source"] == "Google"
    assert typical["TotalVisits"] == 6.0  # the median of the filled ones (a whole-number column: rounded)
    assert typical["Pages"] == pytest.approx(2.0)  # not whole numbers: the median as it is


def test_the_typical_lead_carries_the_code_most_leads_carry():
    assert whatif.typical_lead(_coded_spec(), _coded_rows(0.8))["TotalVisits"] == CODE


def test_a_number_missing_for_most_leads_starts_blank():
    spec = RunSpec.new(approach="stacking", columns=["Score"], kinds={"Score": "numeric"})
    assert whatif.typical_lead(spec, pd.DataFrame({"Score": [np.nan] * 6 + [1.0, 2.0, 3.0, 4.0]}))["Score"] is None


def test_a_real_lead_shows_the_code_its_file_held():
    spec, rows = _coded_spec(), _coded_rows(0.2)
    coded = whatif.file_values(spec, rows.iloc[0])
    assert coded == {"Lead Source": "Google", "TotalVisits": CODE, "Pages": 1.5}
    assert whatif.file_values(spec, rows.iloc[5])["TotalVisits"] == 6.0
    options = whatif.field_options(spec, rows)
    shown = whatif.form_values(spec, whatif.file_values(spec, rows.iloc[9]), options)
    assert shown == {"Lead Source": None, "TotalVisits": 9.0, "Pages": 2.0}


def test_the_lead_is_shaped_with_each_runs_own_codes():
    coded, plain = (
        _coded_spec(),
        RunSpec.new(
            approach="stacking",
            columns=["Lead Source", "TotalVisits", "Pages"],
            kinds={"Lead Source": "categorical", "TotalVisits": "numeric", "Pages": "numeric"},
        ),
    )
    lead = {"Lead Source": "Google", "TotalVisits": CODE, "Pages": whatif.MISSING}
    as_coded = whatif.lead_frame(coded, lead)
    assert list(as_coded.columns) == coded.columns
    assert math.isnan(as_coded.loc[0, "TotalVisits"]) and as_coded.loc[0, FLAG] == 1
    assert math.isnan(as_coded.loc[0, "Pages"])
    as_plain = whatif.lead_frame(plain, lead)
    assert list(as_plain.columns) == plain.columns and as_plain.loc[0, "TotalVisits"] == CODE


# -- scoring one lead on a real run ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stack(small_stack_run):
    run, leads = small_stack_run
    return run, run.load_approach(), leads.drop(columns=["Converted"])


def test_an_edited_lead_scores_what_the_scoring_service_gives_it(stack):
    run, model, leads = stack
    raw = leads.iloc[[7]].astype(object)
    expected = score_frame(run, raw, model=model, explain=0).proba[0]
    given = {column: raw.iloc[0][column] for column in whatif.form_fields(run.settings)}
    assert whatif.lead_probability(run, model, given) == pytest.approx(expected, abs=1e-9)
    edited = {**given, "Total Time Spent on Website": 2500}
    assert whatif.lead_probability(run, model, edited) != pytest.approx(expected, abs=1e-6)


def test_the_typical_lead_from_the_stored_profile_scores(stack):
    run, model, _ = stack
    profile = load_training_profile(run)
    typical = whatif.typical_lead(run.settings, None, profile)
    number = profile["columns"]["Page Views Per Visit"]
    assert typical["Page Views Per Visit"] == pytest.approx(number["quantiles"][5])
    source = profile["columns"]["Lead Source"]["categories"]
    assert typical["Lead Source"] == max(source, key=source.get)
    options = whatif.field_options(run.settings, None, profile)
    assert options["Lead Source"]["values"][: len(source)] == list(source)[: whatif.MAX_CHOICES]
    p = whatif.lead_probability(run, model, whatif.form_values(run.settings, typical, options))
    assert 0.0 < p < 1.0


def test_hostile_leads_score_as_the_scoring_service_reads_them(stack):
    run, model, leads = stack
    base = {column: leads.iloc[3][column] for column in whatif.form_fields(run.settings)}
    missing_time = whatif.lead_probability(run, model, {**base, "Total Time Spent on Website": None})
    for junk in (float("nan"), float("inf"), -float("inf"), "inf", "twelve", "", whatif.MISSING):
        p = whatif.lead_probability(run, model, {**base, "Total Time Spent on Website": junk})
        assert p == pytest.approx(missing_time, abs=1e-9), junk  # no number: read as missing, never an error
    as_text = whatif.lead_probability(run, model, {**base, "Total Time Spent on Website": " 1250 "})
    assert as_text == pytest.approx(whatif.lead_probability(run, model, {**base, "Total Time Spent on Website": 1250}))
    unknown = {**base, "Lead Source": "A source never seen", "Country": "Atlantis"}
    p = whatif.lead_probability(run, model, unknown)
    assert 0.0 < p < 1.0
    raw = pd.DataFrame([unknown]).astype(object)
    assert p == pytest.approx(score_frame(run, raw, model=model, explain=0).proba[0], abs=1e-9)
    assert whatif.lead_probability(run, model, {"not a field": 1}) == pytest.approx(
        whatif.lead_probability(run, model, {}), abs=1e-9
    )  # fields the run does not use are ignored; a lead with none is all missing


def test_what_is_not_a_lead_is_refused_with_the_fix(stack):
    run, model, leads = stack
    with pytest.raises(TypeError, match="mapping of field -> value"):
        whatif.lead_frame(run.settings, ["Google", 3])
    with pytest.raises(ValueError, match="'Lead Source' of the lead holds list, not one value. Fix"):
        whatif.lead_frame(run.settings, {"Lead Source": ["Google", "Direct"]})
    two = whatif.lead_frame(run.settings, {}).pipe(lambda f: pd.concat([f, f]))
    with pytest.raises(ValueError, match="one row, not 2"):
        whatif.lead_probability(run, model, two)
