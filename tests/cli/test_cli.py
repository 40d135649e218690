"""The command line end to end: train -> stored run -> score, and clear errors on bad input."""

import json

import pandas as pd
import pytest
from support import cli_params

from engine.approaches.stacking import SMALL_PARAMS
from engine.cli import main
from engine.data.demo import demo_leads
from engine.runs import RunStore

FAST_STACK = cli_params(SMALL_PARAMS)


@pytest.fixture
def small_leads(tmp_path):
    path = tmp_path / "leads.csv"
    demo_leads(n=500, seed=3).to_csv(path, index=False)
    return path


def test_train_leads_stores_a_run_writes_out_and_score_uses_it(workspace, small_leads, tmp_path, capsys):
    out_dir = tmp_path / "out"
    assert main(["train", "leads", "--data", str(small_leads), "--quiet", "--out", str(out_dir), *FAST_STACK]) == 0
    out = capsys.readouterr().out
    run_id = out.strip().splitlines()[-1].removeprefix("RUN_ID=")
    run = RunStore().get(run_id)
    assert run.settings.policy == "default" and "Tags" in run.settings.excluded
    assert run.settings.split.n_test == 150 and run.settings.params["n_folds"] == 2
    roc = run.metrics["metrics"]["roc_auc"]
    assert roc["low"] <= roc["value"] <= roc["high"] and roc["value"] > 0.6
    assert set(run.metrics["variants"]) == {"lr", "rf", "xgb", "svc"}
    assert len(run.predictions()) == 150
    assert json.loads((out_dir / "metrics.json").read_text())["metrics"] == run.metrics["metrics"]  # --out: a copy

    scored = tmp_path / "scored.csv"
    assert main(["score", "--run", run_id, "--data", str(small_leads), "--out", str(scored)]) == 0
    frame = pd.read_csv(scored)
    assert len(frame) == 500 and frame["score"].between(1, 99).all()
    assert frame["probability"].is_monotonic_decreasing and frame["rank"].tolist() == list(range(1, 501))
    source = pd.read_csv(small_leads)
    assert list(frame.columns[: len(source.columns)]) == list(source.columns)  # the file's own columns first
    # The stored model scores the test rows exactly as it did at training time (found by their CRM id).
    preds = run.predictions()
    by_id = frame.set_index("Prospect ID")["probability"]
    ids = source["Prospect ID"].iloc[preds["row_id"]]
    assert by_id.loc[ids].to_numpy() == pytest.approx(preds["proba"].to_numpy(), abs=1e-6)
    report = json.loads((tmp_path / "scored.report.json").read_text())
    assert report["rows"] == 500 and report["metrics"]["roc_auc"]["value"] > 0.6 and "shift" in report


def test_train_with_a_missing_target_says_which_columns_exist(workspace, small_leads, capsys):
    assert main(["train", "leads", "--data", str(small_leads), "--target", "Revenue", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Revenue" in err and "Lead Origin" in err
    assert RunStore().list_runs(complete_only=False) == []  # nothing stored for bad input


def test_a_parameter_the_approach_does_not_take_is_refused(workspace, small_leads, capsys):
    assert main(["train", "leads", "--data", str(small_leads), "--n_pairs", "3", "--quiet"]) == 2
    assert "n_pairs" in capsys.readouterr().err


def test_cpu_preset_is_only_for_the_llm(workspace, small_leads, capsys):
    assert main(["train", "leads", "--data", str(small_leads), "--preset", "cpu", "--quiet"]) == 2
    assert "--preset cpu is not a preset of the stacking approach; it is for --approach lora" in capsys.readouterr().err


def test_bench_transcripts_refuses_a_parameter_it_does_not_take(workspace, capsys):
    assert main(["bench", "transcripts", "--param", "bogus=1"]) == 2
    assert "does not take ['bogus']" in capsys.readouterr().err


def test_pooling_flag_reaches_the_embeddings_approach_and_refuses_other_values(workspace, capsys):
    from engine.cli import _params_from_args, build_parser

    args = build_parser().parse_args(["train", "transcripts", "--pooling", "speakers"])
    assert _params_from_args(args) == {"pooling": "speakers"}
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["bench", "transcripts", "--pooling", "customer"])
    assert exit_info.value.code == 2 and "invalid choice: 'customer'" in capsys.readouterr().err
    assert main(["bench", "transcripts", "--param", "demo=tiny"]) == 2
    assert "demo must be one of ['long', 'short'], not 'tiny'" in capsys.readouterr().err


def test_cpu_preset_follows_the_processor():
    """Every training row for two epochs where the CPU computes in bf16 natively, 4,000 fp32 rows otherwise;
    asking for fp32 on a bf16 CPU gets the fp32 budget (the bf16 one would take over an hour in fp32)."""
    from engine.approaches.lora import cpu_supports_bf16
    from engine.benchmarks.lora import BF16_CPU_PRESET, CPU_PRESET, cpu_preset

    assert cpu_preset("fp32") == CPU_PRESET
    assert cpu_preset("auto") == (BF16_CPU_PRESET if cpu_supports_bf16() else CPU_PRESET)
    assert BF16_CPU_PRESET["train_rows"] is None and CPU_PRESET["train_rows"] == 4000
