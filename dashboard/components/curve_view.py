"""The Metric board's "Learning curves" tab: each approach's ROC-AUC against training rows on the dataset chosen,
read from the ``bench curve`` files of that file (the workspace's ``curves/`` folder, where the tab's own jobs
write, and the curves committed under ``assets/bench/``), with the crossings in words; and a button that draws
one as a background job, each point shown as it lands.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard.components import charts, state, widgets
from engine.benchmarks.curve import submit_curve
from engine.config import workspace
from engine.curve_words import APPROACH_WORDS, curve_summary, curve_table
from engine.storage import CorruptFile, read_json
from engine.words import plural

REPO_BENCH = Path(__file__).resolve().parents[2] / "assets" / "bench"
DEFAULT_SIZES = "50,100,300,1000,3000,all"


def curves_folder() -> Path:
    return workspace() / "curves"


def curve_out(data_hash: str) -> Path:
    """Where the tab's job writes the curve of the file with ``data_hash`` (one file a dataset: a second job on
    it resumes the first and adds its points)."""
    return curves_folder() / f"curve_{data_hash[:16]}.json"


def curves_for(data_hash: str | None) -> list[tuple[Path, dict]]:
    """The learning curves of the file with ``data_hash``, newest first; files that are not curves, or that do
    not read, are passed over (they are the user's or a bench's, never fatal to the board)."""
    if not data_hash:
        return []
    found = []
    for folder, pattern in ((curves_folder(), "curve_*.json"), (REPO_BENCH, "curve_*.json")):
        if not folder.is_dir():
            continue
        for path in folder.glob(pattern):
            try:
                d = read_json(path, dict)
            except (CorruptFile, OSError):
                continue
            if d.get("kind") == "learning_curve" and d.get("data_hash") == data_hash and d.get("points"):
                found.append((path, d))
    return sorted(found, key=lambda item: item[0].stat().st_mtime, reverse=True)


def _curve_job(runner, out: Path):
    """The newest curve job writing ``out`` that has not ended, if any."""
    for job in runner.list(limit=50):
        if job.kind == "bench-curve" and str(out) in job.argv and not job.done:
            return job
    return None


def learning_curves_section(key: tuple, group: list, random_entry: bool = True) -> None:
    """The tab for the board's dataset ``key`` (its data hash first) and its runs ``group``; redrawn every few
    seconds while a curve job of this file runs, so each point shows as it lands. ``random_entry``: whether the
    board also lists a random-split entry of this file (where a time-split entry points to for its curves)."""
    runner = state.job_runner()
    out = curve_out(key[0]) if key[0] else None
    running_at_draw = out is not None and _curve_job(runner, out) is not None

    @st.fragment(run_every=3 if running_at_draw else None)
    def body() -> None:
        runner.tick()
        job = _curve_job(runner, out) if out is not None else None
        if running_at_draw and job is None:
            st.rerun(scope="app")  # the job ended: the page again, without the timer
        _draw(key, group, runner, out, job, random_entry)

    body()


def _draw(key: tuple, group: list, runner, out: Path | None, job, random_entry: bool = True) -> None:
    data_hash = key[0]
    if len(key) > 1 and key[1] == "time":
        if random_entry:
            st.info(
                "Learning curves use the stratified random split of the file (the same test rows at every size); "
                "choose the random-split entry of this file above to see them."
            )
            return
        # only time-split runs on this file: its curves are drawn here, said to be on another split than the board's
        st.caption(
            "A learning curve uses a stratified random split of this file (the same test rows at every size), not "
            "the time split of the runs above: its ROC-AUC is not comparable with theirs."
        )
    found = curves_for(data_hash)
    if found:
        names = [p.name for p, _ in found]
        pick = st.selectbox("Curve", names, key="board_curve_file") if len(found) > 1 else names[0]
        path, d = found[names.index(pick)]
        table = curve_table(d["points"])  # the file is named as the board names it (a job's curve says data.csv)
        st.plotly_chart(charts.learning_curve_figure(table), key=f"board_curve_{pick}_{len(d['points'])}")
        for line in curve_summary(d["points"]):
            st.markdown(f"- {line}")
        st.caption(
            f"{plural(len(d['points']), 'point')} on {d.get('test_rows', '?'):,} test rows (the same at every size) of "
            f"{group[0].settings.dataset or d.get('dataset', '?')}; {d.get('seeds_note', '')}. Bands: the 95 % bootstrap interval; bars: the "
            f"spread across draws. Measured {d.get('date', '?')} on {d.get('machine', 'a machine not recorded')}. "
            f"File: `{path.name}`."
        )
    else:
        st.info("No learning curve for this file yet: draw one below (minutes for the stack, far longer for the LLM).")
    if job is not None:
        widgets.job_panel(job, runner, show_log=False)
        return
    data_path = state.data_path_for_hash(data_hash)
    with st.expander("Draw learning curves" if not found else "Add to the learning curves", expanded=not found):
        if data_path is None:
            st.caption(state.missing_data_message(group[0]))
            return
        kinds = sorted({r.settings.approach for r in group if r.settings.input_kind == "leads"})
        offered = sorted({*kinds, "stacking", "embeddings"} | ({"lora"} if "lora" in kinds else set()))
        approaches = st.multiselect(
            "Approaches",
            offered,
            default=[a for a in offered if a != "lora"],
            format_func=lambda a: APPROACH_WORDS.get(a, a),
            key="board_curve_approaches",
            help="Each is trained again on nested subsets of the training rows, with its default settings. The LLM "
            "takes hours on a CPU; its points run after the others.",
        )
        sizes = st.text_input(
            "Training sizes",
            DEFAULT_SIZES,
            key="board_curve_sizes",
            help="Numbers of training rows, comma-separated; 'all' is every training row. Sizes below 1,000 are "
            "drawn three times (their spread is large).",
        )
        if st.button("Draw the curves", key="board_curve_go", icon=":material/show_chart:", disabled=not approaches):
            out.parent.mkdir(parents=True, exist_ok=True)
            argv = [
                "--data",
                str(data_path),
                "--approaches",
                ",".join(approaches),
                "--sizes",
                sizes,
                "--json",
                str(out),
            ]
            try:
                job_id = submit_curve(runner, argv, name=f"learning curves of {group[0].settings.dataset}")
            except SystemExit:  # argparse refused the sizes: say why in words
                st.error(
                    f"Training sizes {sizes!r} cannot be used: give whole numbers of rows above 0 and 'all', "
                    "separated by commas (e.g. 50,100,300,all)."
                )
                return
            runner.tick()
            st.session_state["board_curve_job"] = job_id
            st.rerun(scope="app")
