"""What a training run is asked to do, as data: :class:`TrainSpec`.

The CLI's ``train`` builds one from its flags; the job runner writes one into a job's folder as ``spec.json``,
and the job's child process (``python -m engine run-job <folder>``) reads it back, trains through
:func:`run_spec` and writes ``result.json`` (``{"run_id": ...}`` or ``{"error": ...}``). No value ever goes
through an argument parser or is read back from printed text, so a column named ``-Score`` or a dataset
named ``--quiet`` is just a value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from engine.approaches.registry import approach_hook, approach_names, get_approach_class
from engine.config import DEMO_LEADS, DEMO_TRANSCRIPTS
from engine.data.column_kinds import SETTABLE_KINDS, parse_kinds
from engine.data.missing_values import LeadDataError, parse_missing_values
from engine.data.uses import check_use
from engine.storage import CorruptFile, read_json, write_json

SPEC_FILE = "spec.json"
RESULT_FILE = "result.json"
#: The kinds of data a training reads (an approach says which of them it takes: its ``input_kinds`` hook).
DATA_KINDS = ("leads", "transcripts")
DEFAULT_APPROACH = {"leads": "stacking", "transcripts": "embeddings"}
#: Where a training's column kinds came from: its own request (``--kind``), or the dataset's setting (Data page).
KINDS_SOURCES = ("request", "dataset")
#: How the rows are split into training and test rows: the protocol's stratified random split, or by time.
SPLITS = ("stratified", "time")
DEMO_DATA = {
    "leads": DEMO_LEADS,
    "transcripts": DEMO_TRANSCRIPTS,
}


@dataclass
class TrainSpec:
    """One training run: the input, the approach and its parameters, the leak policy, the numbers read as missing
    and the split."""

    input_kind: str
    data: str | None = None  # a path; None = the embedded demo data of that kind
    approach: str | None = None  # None = stacking for leads, embeddings for transcripts
    params: dict[str, Any] = field(default_factory=dict)
    target: str | None = None
    leak_policy: str = "default"
    exclude: list[str] = field(default_factory=list)
    include: list[str] = field(default_factory=list)
    missing_values: dict[str, list[float]] = field(default_factory=dict)  # {column: [numbers read as missing]}
    dataset_name: str | None = None
    preset: str | None = None  # "cpu": the LLM's measured CPU settings under the explicit params
    test_size: float = 0.3
    split_seed: int = 42
    split: str = "stratified"  # "time": the newest test_size of the rows by time_column are the test rows
    time_column: str | None = None
    calibration_share: float | None = None  # leads: training rows kept out of the fit for blends (None: default)
    kinds: dict[str, str] = field(default_factory=dict)  # {column: kind} set over the inferred ones (SETTABLE_KINDS)
    kinds_source: str = "request"  # "dataset": the kinds are the dataset's setting (the Data page)
    use: str = "both"  # leads: "table" (no text columns), "text" (only them) or "both" (engine.data.uses)

    def __post_init__(self):
        if self.input_kind not in DATA_KINDS:
            raise ValueError(f"input_kind must be one of {DATA_KINDS}, not {self.input_kind!r}")
        if self.data is not None and (not isinstance(self.data, str) or not self.data.strip()):
            raise ValueError(f"data must be a file path (text), not {self.data!r}; leave it out for the demo data")
        if not isinstance(self.params, dict) or not all(isinstance(k, str) for k in self.params):
            raise ValueError("params must be an object of parameter name -> value")
        from engine.pipeline import check_params  # heavy: loads scikit-learn

        # the one check of parameters (names, types, ranges): a bad one is refused before a job is queued
        check_params(self.approach or DEFAULT_APPROACH[self.input_kind], self.params, self.input_kind)
        for name in ("exclude", "include"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)) or not all(isinstance(c, str) for c in value):
                raise ValueError(f"{name} must be a list of column names")
            setattr(self, name, list(value))
        self.missing_values = parse_missing_values(self.missing_values)  # the setting's one type, checked here
        if self.missing_values and self.input_kind != "leads":
            raise ValueError("missing_values is a setting of lead tables; transcripts have no numeric columns")
        self._check_kinds()
        if self.preset is not None:
            name = self.approach or DEFAULT_APPROACH[self.input_kind]
            presets = approach_hook(name, "presets", ())
            if self.preset not in presets:
                having = [n for n in approach_names() if self.preset in approach_hook(n, "presets", ())]
                raise ValueError(
                    f"--preset {self.preset} is not a preset of the {name} approach"
                    + (f"; it is for --approach {', '.join(having)}" if having else f"; its presets: {list(presets)}")
                )
        if not 0 < float(self.test_size) < 1:
            raise ValueError(f"test_size must be between 0 and 1, not {self.test_size!r}")
        share = self.calibration_share
        if share is not None and (
            isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share < 0.5
        ):
            raise ValueError(f"calibration_share must be a number from 0 (no slice) to below 0.5, not {share!r}")
        if share and self.input_kind != "leads":
            raise ValueError("calibration_share is a setting of lead runs (blends take lead runs only)")
        check_use(self.use)
        if self.use != "both" and self.input_kind != "leads":
            raise ValueError("use (table | text | both) is a setting of lead tables; transcripts are text")
        self._check_split()

    def _check_kinds(self) -> None:
        """``kinds`` checked (kinds of :data:`SETTABLE_KINDS`), and its columns against the file's header when the
        file can be read here: an unknown column is refused before a job is queued, naming the columns."""
        self.kinds = parse_kinds(self.kinds)  # LeadDataError (a ValueError) naming the column and the kinds
        if self.kinds_source not in KINDS_SOURCES:
            raise ValueError(f"kinds_source must be one of {KINDS_SOURCES}, not {self.kinds_source!r}")
        if not self.kinds:
            return
        if self.input_kind != "leads":
            raise ValueError("kinds is a setting of lead tables; a transcript file has one text column already")
        from engine.data.leads import read_header  # heavy: loads pandas

        try:
            columns, _ = read_header(self.data or DEMO_DATA["leads"])
        except (LeadDataError, OSError):
            return  # the training names the file's problem itself
        by_key = {" ".join(str(c).split()).casefold(): c for c in columns}
        for column in self.kinds:
            if column not in columns and " ".join(column.split()).casefold() not in by_key:
                shown = ", ".join(repr(c) for c in columns[:12]) + (", ..." if len(columns) > 12 else "")
                raise ValueError(
                    f"--kind {column}={self.kinds[column]}: {column!r} is not a column of the file (its columns: "
                    f"{shown}). Fix: name one of them; a kind is one of {', '.join(SETTABLE_KINDS)}."
                )

    def _check_split(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {self.split!r}")
        if self.time_column is not None and (not isinstance(self.time_column, str) or not self.time_column.strip()):
            raise ValueError("time_column must be the name of a date column")
        if self.split == "time":
            if self.input_kind != "leads":
                raise ValueError(
                    "the time split is for lead tables (a date column); transcripts use the stratified one"
                )
            if self.time_column is None:
                raise ValueError("the time split needs its date column: --time-column COLUMN (e.g. 'Created On')")
        elif self.time_column is not None:
            raise ValueError(f"--time-column {self.time_column!r} is used only by the time split: add --split time")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> TrainSpec:
        """A spec from its JSON; keys it does not know are refused, not dropped."""
        if not isinstance(payload, dict):
            raise ValueError(f"a training spec is a JSON object, not {type(payload).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(payload) - known)
        if unknown:
            raise ValueError(f"unknown training spec field(s) {unknown}; known: {sorted(known)}")
        if "input_kind" not in payload:
            raise ValueError("a training spec needs input_kind ('leads' or 'transcripts')")
        return cls(**payload)


def run_spec(spec: TrainSpec, callbacks=None):
    """Train, evaluate and store the run a spec asks for (through :mod:`engine.pipeline`); returns the run."""
    from engine import pipeline  # heavy: loads scikit-learn

    params = dict(spec.params)
    if spec.preset is not None:
        cls = get_approach_class(spec.approach or DEFAULT_APPROACH[spec.input_kind])
        params = {**cls.preset_params(spec.preset, params), **params}  # parameters given explicitly still win
    data = spec.data or DEMO_DATA[spec.input_kind]
    if spec.input_kind == "leads":
        return pipeline.train_leads(
            data,
            approach=spec.approach or DEFAULT_APPROACH["leads"],
            target=spec.target,
            leak_policy=spec.leak_policy,
            exclude=spec.exclude,
            include=spec.include,
            missing_values=spec.missing_values,
            time_column=spec.time_column if spec.split == "time" else None,
            params=params,
            callbacks=callbacks,
            dataset_name=spec.dataset_name,
            test_size=spec.test_size,
            seed=spec.split_seed,
            calibration_share=spec.calibration_share,
            kinds=spec.kinds,
            kinds_source=spec.kinds_source,
            use=spec.use,
        )
    return pipeline.train_transcripts(
        data,
        approach=spec.approach or DEFAULT_APPROACH["transcripts"],
        params=params,
        callbacks=callbacks,
        dataset_name=spec.dataset_name,
        test_size=spec.test_size,
        seed=spec.split_seed,
    )


def write_spec(folder: str | Path, spec: TrainSpec) -> Path:
    return write_json(Path(folder) / SPEC_FILE, spec.to_dict())


def read_spec(folder: str | Path) -> TrainSpec:
    return TrainSpec.from_dict(read_json(Path(folder) / SPEC_FILE, dict))


def read_result(folder: str | Path) -> dict | None:
    """A job's ``result.json`` (``run_id`` or ``error``), or None when it wrote none (or a damaged one)."""
    f = Path(folder) / RESULT_FILE
    if not f.exists():
        return None
    try:
        return read_json(f, dict)
    except CorruptFile:
        return None
