"""Plain words ("Trust the daily numbers"): Train's labels and the LLM's estimate before launch say what they mean
and assume."""

from __future__ import annotations

import sys

from dashboard_support import run_page, texts
from support import demo_leads_csv

from engine.jobs import JobRunner

PY = sys.executable


def test_train_speaks_plainly_and_the_llm_estimate_says_what_it_assumes(workspace):
    from dashboard.components import state
    from engine.datasets import DatasetStore

    DatasetStore().add(demo_leads_csv(n=80), filename="l.csv", kind="leads", target="Converted")
    at = run_page("train")
    labels = [w.label for w in at.number_input]
    assert "Passes to learn how to combine the four models" in labels
    assert not [label for label in labels if "Combiner" in label]
    at.selectbox(key="train_approach").set_value("lora").run()
    labels = [w.label for w in at.number_input]
    assert "Adapter size" in labels and not [label for label in labels if "rank" in label]
    if state.gpu_info()["cuda"]:
        return  # the CPU estimate is shown without a GPU only
    banner = next(i.value for i in at.info if "CPU preset" in i.value)
    assert "idle 2-core CPU" in banner and "slower while other jobs run" in banner
    assert "bf16" not in banner and "AVX" not in banner and "fp32" not in banner  # one click away
    details = next(e for e in at.expander if e.label == "Advanced: how the CPU time was measured")
    assert "bf16" in texts(details.caption) and "2-core AMD EPYC" in texts(details.caption)
    runner = JobRunner(workspace)
    busy = runner.submit_command([PY, "-c", "import time; time.sleep(60)"], name="busy")
    runner.tick()
    try:
        at.run()
        banner = next(i.value for i in at.info if "CPU preset" in i.value)
        assert banner.endswith("1 job is running or waiting now.")  # the estimate is for an idle machine
    finally:
        runner.cancel(busy, clean_stop=0)
