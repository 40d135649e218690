"""The join of a lead table with its calls (engine.data.join, ``python -m engine join``): many calls per lead in time
order, ids missing on either side, duplicate ids refused, hostile ids and files, and 1,000,000 x 1,000,000."""

import json
import time

import numpy as np
import pandas as pd
import pytest

from engine.cli import main
from engine.data.join import CALL_SEPARATOR, JoinError, join_leads_calls


def _leads(ids, **extra):
    return pd.DataFrame({"Lead ID": ids, "Converted": [i % 2 for i in range(len(ids))], **extra})


def _call(lead_id, text, when=None, **meta):
    metadata = {"lead_id": lead_id, **({"call_time": when} if when else {}), **meta}
    return {"transcript": text, "label": 1, "metadata": metadata}


def test_several_calls_of_a_lead_are_joined_in_time_order_not_file_order():
    calls = [
        _call("a", "third", "2025-03-05T10:00"),
        _call("b", "only b", "2025-03-01T09:00"),
        _call("a", "first", "2025-03-01T08:00"),
        _call("a", "second", "2025-03-03T12:30"),
    ]
    result = join_leads_calls(_leads(["a", "b", "c"]), calls)
    texts = dict(zip(result.frame["Lead ID"], result.frame["call"]))
    assert texts["a"] == CALL_SEPARATOR.join(["first", "second", "third"])
    assert texts["b"] == "only b"
    assert pd.isna(texts["c"])
    report = result.report
    assert report.time_field == "call_time" and report.most_calls_per_lead == 3
    assert (report.leads_with_calls, report.leads_without_calls, report.calls_joined) == (2, 1, 4)
    assert report.examples_leads_without_calls == ["c"]
    assert list(result.frame.columns) == ["Lead ID", "Converted", "call"]  # the table as it was, plus the text


def test_without_a_time_field_calls_keep_file_order_and_unreadable_times_go_last():
    plain = join_leads_calls(_leads(["a"]), [_call("a", "one"), _call("a", "two"), _call("a", "three")])
    assert plain.frame["call"][0] == CALL_SEPARATOR.join(["one", "two", "three"])
    assert plain.report.time_field is None
    mixed = [_call("a", "late", "not a date"), _call("a", "early", "2025-01-01"), _call("a", "mid", "2025-02-01")]
    assert join_leads_calls(_leads(["a"]), mixed).frame["call"][0] == CALL_SEPARATOR.join(["early", "mid", "late"])


def test_ids_missing_on_either_side_are_counted_with_examples():
    leads = _leads(["a", "b", None, "d"])
    calls = [_call("a", "x"), _call("zz", "orphan"), _call("yy", "orphan 2"), _call(None, "no id"), _call("d", "y")]
    report = join_leads_calls(leads, calls).report
    assert report.leads == 4 and report.calls == 5
    assert report.leads_with_calls == 2 and report.leads_without_calls == 2  # b, and the lead without an id
    assert report.leads_without_id == 1 and report.calls_without_id == 1
    assert report.calls_without_leads == 2 and report.examples_calls_without_leads == ["zz", "yy"]
    text = "\n".join(report.lines())
    assert "2 calls name a lead id the table does not have" in text and "1 calls have no lead id" in text


def test_duplicate_lead_ids_are_refused_naming_them_and_the_fix():
    with pytest.raises(JoinError, match=r"2 rows of the lead table share an id in 'Lead ID' \(e.g. a\).*Fix"):
        join_leads_calls(_leads(["a", "b", "a"]), [_call("a", "x")])


def test_the_id_column_is_found_by_its_values_and_numbers_match_as_whole_numbers():
    leads = pd.DataFrame({"Lead Number": [660737, 660738, 660739], "Owner ID": ["u1", "u2", "u3"], "y": [0, 1, 0]})
    calls = [_call("660738.0", "a call"), _call(660739, "another")]
    result = join_leads_calls(leads, calls)
    assert result.report.lead_id_column == "Lead Number"
    assert result.frame["call"].tolist()[1:] == ["a call", "another"]


def test_a_nested_or_top_level_id_field_can_be_named():
    leads = _leads(["a", "b"])
    nested = [{"transcript": "x", "metadata": {"crm": {"lead": "b"}}}]
    assert join_leads_calls(leads, nested, call_id="metadata.crm.lead").frame["call"].tolist()[1] == "x"
    flat = [{"transcript": "y", "lead": "a"}]  # a CSV file's columns are the record's own fields
    assert join_leads_calls(leads, flat, call_id="lead").frame["call"].tolist()[0] == "y"


@pytest.mark.parametrize(
    "bad_id, message",
    [
        (True, r"record 2 has true/false 'True' as its lead id"),
        ({"x": 1}, r"record 2 has an object .* as its lead id"),
        ([1, 2], r"record 2 has a list .* as its lead id"),
    ],
)
def test_ids_that_are_not_ids_are_refused(bad_id, message):
    with pytest.raises(JoinError, match=message + r".*Fix"):
        join_leads_calls(_leads(["a"]), [_call("a", "fine"), _call(bad_id, "bad")])


def test_formula_ids_match_as_they_are_and_are_shown_neutralised():
    leads = _leads(["=1+1", "@SUM(A1)", "+cmd"])
    result = join_leads_calls(leads, [_call("=1+1", "x"), _call("=HYPERLINK(evil)", "y")])
    assert result.frame["call"].tolist()[0] == "x"
    assert result.report.examples_calls_without_leads == ["'=HYPERLINK(evil)"]
    assert result.report.examples_leads_without_calls == ["'@SUM(A1)", "'+cmd"]


@pytest.mark.parametrize(
    "leads, calls, kw, message",
    [
        (_leads(["a"]), [_call("a", "x")], {"lead_id": "Missing"}, r"no column 'Missing' .*Fix: .*--id COLUMN"),
        (_leads(["a"]), [_call("q", "x")], {}, r"no column of the lead table holds the calls' lead ids.*Fix"),
        (_leads(["a"]), [{"transcript": "x", "metadata": {}}], {}, r"no call has a lead id in.*Fix"),
        (_leads(["a"]), [], {}, r"no records.*Fix"),
        (_leads(["a"]), ["text only"], {}, r"record 1 is a str, not an object.*Fix"),
        (_leads(["a"]), [{"transcript": 5, "metadata": {"lead_id": "a"}}], {}, r"record 1 has no text.*Fix"),
        (_leads(["a"], call=["old"]), [_call("a", "x")], {}, r"already has a column 'call'.*--text-column"),
        (_leads(["a"]), [_call("a", "x")], {"call_id": "metadata..id"}, r"empty part.*Fix"),
        (_leads(["a"]), [_call("a", "x")], {"text_column": "  "}, r"needs a name.*Fix"),
    ],
)
def test_hostile_input_gets_one_clear_error(leads, calls, kw, message):
    with pytest.raises(JoinError, match=message):
        join_leads_calls(leads, calls, **kw)


@pytest.mark.parametrize(
    "leads, calls, kw, flag",
    [
        (_leads(["a"], call=["old"]), [_call("a", "x")], {}, "text_column"),
        (_leads(["a"]), [_call("a", "x")], {"text_column": " "}, "text_column"),
        (_leads(["a"]), [_call("a", "x")], {"lead_id": "Missing"}, "lead_id"),
        (_leads(["a", "a"]), [_call("a", "x")], {"lead_id": "Lead ID"}, "lead_id"),
        (_leads(["a"]), [_call("q", "x")], {}, "lead_id"),
        (_leads(["a"]), [{"transcript": "x", "metadata": {}}], {}, "call_id"),
        (_leads(["a"]), [_call(["a"], "x")], {}, "call_id"),
    ],
)
def test_a_fix_names_the_flag_by_default_and_the_callers_field_when_given(leads, calls, kw, flag):
    """The CLI's fix names its flag; the Data page passes its fields' labels and its fix names those, never a flag."""
    from engine.data.join import CLI_FIELDS

    with pytest.raises(JoinError) as by_default:
        join_leads_calls(leads, calls, **kw)
    assert CLI_FIELDS[flag] in str(by_default.value)
    page = {"lead_id": "in 'Id box'", "call_id": "in 'Call id box'", "text_column": "in 'Text box'"}
    with pytest.raises(JoinError) as on_a_page:
        join_leads_calls(leads, calls, fields=page, **kw)
    assert page[flag] in str(on_a_page.value) and "--" not in str(on_a_page.value)


def test_empty_files_are_refused_naming_the_file(tmp_path):
    empty, calls = tmp_path / "leads.csv", tmp_path / "calls.jsonl"
    empty.write_bytes(b"")
    calls.write_text(json.dumps(_call("a", "x")) + "\n")
    with pytest.raises(JoinError, match="lead table cannot be read"):
        join_leads_calls(empty, calls)
    header_only = tmp_path / "header.csv"
    header_only.write_text("Lead ID,Converted\n")
    with pytest.raises(JoinError, match="no rows"):
        join_leads_calls(header_only, calls)
    (tmp_path / "none.jsonl").write_bytes(b"")
    good = tmp_path / "good.csv"
    _leads(["a"]).to_csv(good, index=False)
    with pytest.raises(JoinError, match="calls cannot be read"):
        join_leads_calls(good, tmp_path / "none.jsonl")


def test_cli_join_writes_a_new_file_stores_a_dataset_and_never_replaces_anything(tmp_path, workspace, capsys):
    leads, calls, out = tmp_path / "leads.csv", tmp_path / "calls.jsonl", tmp_path / "joined.csv"
    _leads(["a", "b"]).to_csv(leads, index=False)
    calls.write_text("".join(json.dumps(c) + "\n" for c in [_call("a", "hello"), _call("zz", "orphan")]))
    before = (leads.read_bytes(), calls.read_bytes())
    assert main(["join", "--leads", str(leads), "--calls", str(calls), "--out", str(out), "--store"]) == 0
    printed = capsys.readouterr().out
    assert "1 calls name a lead id the table does not have" in printed and "stored as dataset" in printed
    assert pd.read_csv(out)["call"].tolist()[0] == "hello"
    assert (leads.read_bytes(), calls.read_bytes()) == before
    from engine.datasets import DatasetStore

    [ds] = DatasetStore().list()
    assert ds.kind == "leads" and "Joined with calls" in ds.meta.get("notes", "")
    from engine.data.join import JOINED_FROM, is_join_output
    from engine.datasets import content_hash

    hashes = {"leads": content_hash(before[0]), "calls": content_hash(before[1])}
    assert ds.meta[JOINED_FROM] == hashes and is_join_output(ds.meta)  # the Data page offers it last to join
    version = DatasetStore().add_version(ds.sha, ds.raw_path.read_bytes() + b"c,1,\n")
    assert version.meta[JOINED_FROM] == hashes  # a new version of a join is a join too
    assert is_join_output({"notes": "Joined with calls: 2 leads"})  # stored before joined_from was recorded
    assert not is_join_output({"notes": "my own notes"}) and not is_join_output({})
    assert main(["join", "--leads", str(leads), "--calls", str(calls), "--store", "--text-column", "Converted"]) == 2
    assert "already has a column 'Converted'" in (err := capsys.readouterr().err) and "--text-column NAME" in err
    written = out.read_bytes()
    assert main(["join", "--leads", str(leads), "--calls", str(calls), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == written
    assert main(["join", "--leads", str(leads), "--calls", str(calls), "--out", str(leads)]) == 2
    assert "same file" in capsys.readouterr().err and leads.read_bytes() == before[0]
    assert main(["join", "--leads", str(leads), "--calls", str(calls)]) == 2
    assert "--out FILE.csv, --store" in capsys.readouterr().err


def _million(n):
    rng = np.random.default_rng(0)
    ids = np.char.add("L", np.arange(n).astype(str)).astype(object)
    leads = pd.DataFrame({"Prospect ID": ids, "Converted": rng.integers(0, 2, n)})
    owners = ids[rng.integers(0, int(n * 1.05), n) % n]  # some leads get several calls, some none
    owners[: n // 50] = "ORPHAN"  # and 2 % of calls name no lead of the table
    days = rng.integers(1, 28, n)
    calls = [
        {"transcript": f"call {i}", "metadata": {"lead_id": o, "call_time": f"2025-03-{d:02d}"}}
        for i, (o, d) in enumerate(zip(owners, days))
    ]
    return leads, calls


def _timed_join(n):
    """The join and the CPU seconds it took (this process's, all its threads): on a shared machine the wall time
    says more about the neighbours than about the join (1,000,000 x 1,000,000: 10 s of CPU, 115 s of wall time
    at a load average of 22 on 2 cores)."""
    leads, calls = _million(n)
    start = time.process_time()
    result = join_leads_calls(leads, calls)
    return result, time.process_time() - start


def test_a_hundred_thousand_leads_against_as_many_calls_join_in_seconds():
    result, seconds = _timed_join(100_000)
    report = result.report
    assert report.calls_without_leads == 2_000 and report.calls_joined == 98_000
    assert report.leads_with_calls + report.leads_without_calls == 100_000
    assert seconds < 10, f"100,000 x 100,000 took {seconds:.1f} s of CPU"


@pytest.mark.slow
def test_a_million_leads_against_a_million_calls_within_a_minute():
    """Slow: building the million call records takes longer than the join (about 10 s of CPU)."""
    result, seconds = _timed_join(1_000_000)
    assert result.report.calls_joined == 980_000 and result.report.leads == 1_000_000
    assert seconds < 60, f"1,000,000 x 1,000,000 took {seconds:.1f} s of CPU"


def test_two_joins_stored_at_once_make_one_intact_dataset(tmp_path, workspace):
    """The dataset store is shared: two `join --store` processes of the same files at the same moment store the join
    once, whole (the store's lock), and both say where it is."""
    import os
    import subprocess
    import sys

    leads, calls = tmp_path / "leads.csv", tmp_path / "calls.jsonl"
    _leads([f"L{i}" for i in range(200)]).to_csv(leads, index=False)
    calls.write_text("".join(json.dumps(_call(f"L{i % 150}", f"call {i}")) + "\n" for i in range(300)))
    env = {**os.environ, "CLAB_WORKSPACE": str(workspace)}
    argv = [sys.executable, "-m", "engine", "join", "--leads", str(leads), "--calls", str(calls), "--store"]
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    from engine.datasets import DatasetStore

    [ds] = DatasetStore().list()
    assert all(f"({ds.sha[:12]})" in out for out, _ in outs)
    joined = pd.read_csv(ds.raw_path)
    assert len(joined) == 200 and joined["call"].notna().sum() == 150
