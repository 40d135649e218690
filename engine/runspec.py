"""A stored run's ``spec.json`` as a typed object, :class:`RunSpec`, checked once when the run is loaded.

A spec that parses as JSON can still hold wrong types (``columns`` as text, ``split`` as a string, a list for the
data hash, a damaged ``missing_values``, an unknown input kind); read as it is, it would fail later in every
reader (a 500 from the API, a traceback from ``score``, an error on a page). :func:`validate_spec` turns such a
spec into :class:`SpecProblem` with one line naming the field, so the run store skips the run and names it like
one whose file does not parse. Specs written by earlier code stay readable: every field they always held is
checked, fields a hand-made or older spec may lack have defaults, and keys this model does not know are kept.

Every reader takes a run's settings from here (``run.settings.columns``, ``.kinds``, ``.flags``...), never from
the file as a mapping; a training builds its run's spec as a :class:`RunSpec` too (:meth:`RunSpec.new`), so that
a spec the store would refuse to read is never written.

Nothing here imports NumPy or pandas: listing runs (the dashboard's first page) needs neither.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from engine.data.column_kinds import ColumnKinds
from engine.data.missing_values import MissingValues, flags_of

#: The column kinds a lead table's columns are read as (:data:`engine.data.leads.KINDS`).
COLUMN_KINDS = ("numeric", "binary", "categorical", "high_cardinality", "identifier", "text", "date")

Number = StrictFloat  # strict: an int is a number, a bool or text is not
Names = list[StrictStr]


class SpecProblem(ValueError):
    """A run's spec that parses but cannot be used: ``problem`` is one line naming the field and why."""

    def __init__(self, problem: str):
        self.problem = problem
        super().__init__(problem)


class Split(BaseModel):
    """How the run's rows were split: the protocol's ``stratified holdout``, or ``time`` (the newest
    ``test_size`` of the rows by the date ``column`` are the test rows; ``cutoff`` is the oldest test row's
    time, ISO 8601, and no training row is newer)."""

    model_config = ConfigDict(extra="allow")

    method: StrictStr = "stratified holdout"
    test_size: Number | None = Field(default=None, gt=0, lt=1)
    seed: StrictInt | None = None
    n_train: StrictInt | None = Field(default=None, ge=0)
    n_test: StrictInt | None = Field(default=None, ge=0)
    column: StrictStr | None = None  # the time split's date column
    cutoff: StrictStr | None = None  # the time split's cut-off
    # the calibration slice (engine.evaluate.calibration_slice): training rows kept out of the fit, the same rows for
    # every approach on the dataset and split (the hash of their row ids says so); 0 rows: none (older runs have none)
    calibration_share: Number | None = Field(default=None, ge=0, lt=0.5)
    calibration_rows: StrictInt | None = Field(default=None, ge=0)
    calibration_hash: StrictStr | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _time_split(self) -> Split:
        if self.method == "time" and not (self.column and self.cutoff):
            raise ValueError("a time split needs its 'column' and 'cutoff'")
        return self

    def describe(self) -> str:
        """The split in words, as the board names it."""
        if self.method == "time":
            return f"time split on {self.column!r}: test rows from {self.cutoff[:10]} on (newest {self.share})"
        return f"stratified random split ({self.share} test, seed {self.seed})"

    @property
    def has_calibration(self) -> bool:
        """Whether the run held out a calibration slice (and stored its predictions on it): what a blend needs."""
        return bool(self.calibration_rows and self.calibration_hash)

    @property
    def share(self) -> str:
        return f"{self.test_size:.0%}" if self.test_size is not None else "?"


#: What an approach's name may be (the registry refuses other names; a run id and a spec carry it): one home.
APPROACH_NAME = r"^[a-z][a-z0-9_]{0,31}$"


class RunSpec(BaseModel):
    """What a run was trained on and how: the typed ``spec.json``. Extra keys are kept (``model_extra``)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    input_kind: Literal["leads", "transcripts"] = "leads"
    approach: StrictStr = Field(pattern=APPROACH_NAME)  # a registered name (new ones can be added)
    columns: Names = []  # the features in their order; a lead run must have some
    kinds: dict[StrictStr, Literal[COLUMN_KINDS]] = {}  # type: ignore[valid-type]
    # the kinds the user set over the inferred ones ({column: kind}) and where the setting came from: "request" (a
    # training's own --kind / TrainSpec.kinds) or "dataset" (the dataset's setting, from the Data page)
    kinds_set: ColumnKinds = {}
    kinds_source: Literal["request", "dataset"] | None = None
    target: StrictStr | None = None
    policy: StrictStr | None = None  # the leak policy
    excluded: Names = []
    dropped: dict[StrictStr, StrictStr] = {}
    flagged: dict[StrictStr, StrictStr] = {}  # columns it used that the leak finder flagged -> the finder's reason
    missing_values: MissingValues = {}  # checked here, once: every reader takes the value as it is
    use: Literal["table", "text", "both"] = "both"  # the part of a lead table trained on (engine.data.uses)
    split: Split | None = None
    dataset: StrictStr | None = None
    data_hash: StrictStr | None = Field(default=None, pattern=r"^[0-9a-f]{8,128}$")
    data_path: StrictStr | None = None
    rows: StrictInt | None = Field(default=None, ge=0)
    warnings: Names = []
    params: dict[StrictStr, Any] = {}
    run_id: StrictStr | None = None
    created: Number | None = None

    @field_validator("created")
    @classmethod
    def _created(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("not a finite time")
        return value

    @model_validator(mode="after")
    def _lead_columns(self) -> RunSpec:
        if self.input_kind == "leads" and not self.columns:
            raise ValueError("has no 'columns' (a lead run needs its list of feature columns)")
        return self

    @classmethod
    def new(cls, **fields: Any) -> RunSpec:
        """A new run's spec from what its training knows (the store adds ``run_id`` and ``created``), checked as
        a stored one is: :class:`SpecProblem` naming the field, before anything is written. Only the fields given
        are written (:meth:`as_dict`), as before this model existed."""
        return validate_spec(fields)

    def as_dict(self) -> dict[str, Any]:
        """The spec as ``spec.json`` holds it: the keys given (stored or :meth:`new`'s), checked and normalised
        (``missing_values`` as :data:`MissingValues` makes it; none when empty), ``input_kind`` always present."""
        out = self.model_dump(exclude_unset=True)
        out["input_kind"] = self.input_kind
        if "missing_values" in out and not out["missing_values"]:
            del out["missing_values"]
        return out

    # -- what readers derive from the settings (one rule each) ---------------------------------------------------
    @property
    def flags(self) -> dict[str, tuple[str, float]]:
        """The 0/1 columns the run made for its numbers read as missing: ``{"TotalVisits was 999": ("TotalVisits",
        999.0)}`` (:func:`engine.data.missing_values.flags_of`; made from the setting, never read from rows)."""
        return flags_of(self.missing_values)

    @property
    def identifiers(self) -> list[str]:
        """The columns the data layer left out as identifiers (a CRM id such as ``Prospect ID``): ``dropped`` with
        a reason ``identifier ...``."""
        return [column for column, why in self.dropped.items() if why.startswith("identifier")]

    @property
    def known_columns(self) -> set[str]:
        """Every column the training saw: its features, the ones the leak policy or the data layer left out, and
        the outcome (new rows holding them are expected, not "unknown")."""
        return {*self.columns, *self.excluded, *self.dropped, *([self.target] if self.target else [])}

    @property
    def outcome(self) -> str | None:
        """The outcome column a file of this run's kind may carry: ``label`` for calls, the target for leads."""
        return "label" if self.input_kind == "transcripts" else self.target

    @property
    def unit(self) -> str:
        """What one row of the run's data is, in words: ``calls`` or ``leads``."""
        return "calls" if self.input_kind == "transcripts" else "leads"

    @property
    def split_key(self) -> tuple:
        """Runs with the same key were scored on the same test rows: the board's groups. The same file, split
        method, test share and seed; the time split's test rows follow from its date column, not from the seed."""
        split = self.split
        if split is None:
            return (self.data_hash, "stratified holdout", None, None, None)
        if split.method == "time":
            return (self.data_hash, "time", split.column, split.test_size, None)
        return (self.data_hash, split.method, None, split.test_size, split.seed)

    @property
    def use_key(self) -> tuple:
        """Runs with the same key differ at most by ``use`` (table | text | both): the same split and approach,
        target, leak policy, exclusions and parameters. The board pairs them to say what the text is worth."""
        import json

        return (
            self.split_key,
            self.approach,
            self.target,
            self.policy,
            tuple(sorted(self.excluded)),
            json.dumps(self.params, sort_keys=True, default=str),
        )


def _where(loc: tuple) -> str:
    parts = [part for part in loc if not str(part).startswith(("function-", "literal["))]
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" if i else str(p) for i, p in enumerate(parts))


def _line(message: str) -> str:
    """One line of a field's problem; the fix a setting's own check suggests (``. Fix: ...``) is left out: the fix
    of a damaged spec is to train the run again, which the reader says."""
    return " ".join(str(message).removeprefix("Value error, ").split(". Fix:")[0].split())[:200]


def validate_spec(payload: Any) -> RunSpec:
    """``payload`` (a parsed ``spec.json``) as a :class:`RunSpec`; raises :class:`SpecProblem` with one line naming
    the first field that is wrong (``spec.json has a wrong 'columns': Input should be a valid list``)."""
    try:
        return RunSpec.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = _where(first["loc"]) or "content"
        message = _line(first["msg"])
        if first["type"] == "missing":
            raise SpecProblem(f"spec.json has no {where!r}") from None
        if where == "content":  # the whole spec: not an object, or fields that do not agree
            raise SpecProblem(
                f"spec.json {message if first['type'] == 'value_error' else 'is not an object'}"
            ) from None
        raise SpecProblem(f"spec.json has a wrong {where!r}: {message}") from None
