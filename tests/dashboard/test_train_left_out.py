"""Train says before launch which columns the model will not use, and offers the X Education leak presets only on a
table that has their columns: on another export the policy is "none" plus the user's exclusions ("Trust the daily
numbers")."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from dashboard_support import run_page, texts
from support import demo_leads_csv

from engine.jobs import JobRunner


def _not_used(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("**Not used by the model**"))


def test_train_lists_the_columns_the_model_will_not_use_before_launch(workspace):
    from engine.datasets import DatasetStore

    store = DatasetStore()
    ds = store.add(demo_leads_csv(n=120), filename="xeducation.csv", kind="leads", target="Converted")
    store.update(ds.sha, leak_policy="strict", exclude=["Country"])
    at = run_page("train")
    listed = _not_used(at)
    assert (
        "- Give the outcome away (Strict: fields filled in after contact, and the last activity): Last Activity, "
        "Tags, Lead Quality, Lead Profile, Asymmetrique Activity Index" in listed
    )
    assert "- Excluded by you: Country" in listed
    assert "- Identifiers (a different value in every row): Prospect ID, Lead Number" in listed
    assert "- The same value in every row: Do Not Call, Search" in listed
    assert "(23 columns)" in listed.splitlines()[0]  # 9 by the preset, 1 by hand, 2 identifiers, 11 constant
    assert "Leak policy: Strict" in texts(at.caption)


def test_another_export_gets_no_x_education_preset_and_trains_with_none(workspace):
    """A CRM export without X Education's after-contact fields: the presets would leave out nothing, so the page says
    "none" and points to the leak finder, and the job is launched with the policy that applies."""
    from engine.datasets import DatasetStore

    leads = pd.read_csv(io.BytesIO(demo_leads_csv(n=120)))
    other = leads[["Lead Origin", "Lead Source", "TotalVisits", "Total Time Spent on Website", "Converted"]]
    other = other.rename(columns={"Lead Origin": "Channel", "Lead Source": "Campaign", "TotalVisits": "Visits"})
    store = DatasetStore()
    ds = store.add(other.to_csv(index=False).encode(), filename="other_crm.csv", kind="leads", target="Converted")
    store.update(ds.sha, leak_policy="strict", exclude=["Campaign"])
    at = run_page("train")
    assert _not_used(at) == "**Not used by the model** (1 column):\n- Excluded by you: Campaign"
    policy = next(c for c in at.caption if c.value.startswith("Leak policy:"))
    assert policy.value.startswith("Leak policy: none — this file has none of the columns the Usual and Strict")
    assert "leak finder" in policy.value and "`--leak-policy none" in policy.proto.help
    at.button(key="train_launch").click().run()
    runner = JobRunner(workspace)
    job = runner.get(at.session_state["train_job"])
    try:
        assert job.params["leak_policy"] == "none" and job.params["exclude"] == ["Campaign"]
    finally:
        runner.cancel(job.id, clean_stop=0)


@pytest.mark.parametrize("with_activity", [True, False])
def test_leak_presets_are_offered_only_for_the_columns_they_name(with_activity):
    from engine.data.leak_policy import effective_policy, leak_presets_for, left_out

    xeducation = ["Lead Origin", "Tags", "Lead Quality", "TotalVisits"] + (["Last Activity"] if with_activity else [])
    other = ["Company size", "Industry", "Web visits", "Stage after call"]
    assert leak_presets_for(other) == ["none"] and effective_policy(other, "default") == "none"
    assert left_out(other, "strict", exclude=["Stage after call"]) == ([], ["Stage after call"])
    if with_activity:
        assert leak_presets_for(xeducation) == ["default", "none", "strict"]
        assert effective_policy(xeducation, "strict") == "strict"
        assert left_out(xeducation, "strict") == (["Tags", "Lead Quality", "Last Activity"], [])
    else:
        assert leak_presets_for(xeducation) == ["default", "none"]  # strict would leave out nothing more
        assert effective_policy(xeducation, "strict") == "default"
    assert left_out(xeducation, "default", include=["Tags"]) == (["Lead Quality"], [])
