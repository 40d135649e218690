"""Scoring a lead CSV larger than memory: read in chunks, scored chunk by chunk (here, or over a Ray cluster with
Ray Data), ranked over the whole file, and written ranked as it goes, in memory bounded by the chunk size.

:func:`score_file` gives what :func:`engine.scoring.score_frame` gives for the same file (ranks, probabilities,
scores, tiers, reasons, the validation report, metrics when the outcome column is there): the same functions
shape, check, score and explain each chunk. What differs is how the file is held:

1. **read**: the CSV is read in chunks of text (``dtype=str``: no chunk infers a type of its own), each written to
   a Parquet piece in a temporary folder with its rows' positions. What the cleaning decides from a whole column
   (whether a yes/no column holds only numbers) is decided over the whole file here, then fixed for every chunk;
2. **score**: each piece is shaped with the run's recorded columns and kinds and scored; with ``ray_address`` the
   pieces go through ``ray.data.read_parquet(...).map_batches`` with the run loaded once in each worker
   (:class:`ChunkScorer`, the same code as here), so the two give the same output row for row;
3. **rank**: the probabilities (8 bytes a row) are ranked over the whole file; scores and tiers are on the run's
   scale (:func:`engine.scoring.run_scores`), so a row's tier does not depend on the rest of the file;
4. **write**: each piece's rows are spread into rank buckets (Parquet), then the buckets are written in rank order
   to the output CSV, the best first; the top ``explain`` rows get reasons as they are written.

The file's own columns are written as their text in the file (the in-memory path writes them as pandas parsed
them: ``5.0`` for a ``5`` in a column with blanks). The shift check runs on a uniform sample of
:data:`SHIFT_SAMPLE_ROWS` rows. Memory: the chunk (``chunk_rows``, from :func:`memory_budget`) plus 16 bytes a row.
"""

from __future__ import annotations

import codecs
import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from engine.data.leads.kinds import _as_number, _clean_strings
from engine.data.leads.reading import (
    _FORMATS_HINT,
    MAX_COLS,
    _check_duplicates,
    _detect_format,
    _header_fields,
    _sniff_delimiter,
)
from engine.data.missing_values import LeadDataError
from engine.data.sources import TEXT_ENCODINGS, sniff_encoding
from engine.scoring import (
    PROBA_DECIMALS,
    ROW_COLUMN,
    SCORE_COLUMNS,
    ScoringError,
    ValidationReport,
    _output_name,
    check_finite,
    explain_budget,
    flag_columns,
    identifier_columns,
    prepare_rows,
    run_scores,
    top_factors,
)
from engine.storage import neutralise_frame

#: The memory a scoring may use, in MB (``CLAB_SCORE_MEMORY_MB``); a file that would need more once read whole
#: is read in chunks sized to it.
MEMORY_ENV = "CLAB_SCORE_MEMORY_MB"
DEFAULT_MEMORY_MB = 2048
#: Bytes of memory a byte of CSV takes once read whole, shaped, scored and ranked (measured on the demo leads
#: with the stack: about 10; rounded up).
MEMORY_PER_CSV_BYTE = 12
#: A chunk's rows, at least and at most (what the budget gives is kept between them).
MIN_CHUNK_ROWS, MAX_CHUNK_ROWS = 1_000, 200_000
#: The rows the shift check compares with the training sample (a uniform sample of the file).
SHIFT_SAMPLE_ROWS = 50_000
#: The rows of a list scored in chunks that the scored-list store keeps: the top of the list (the leads a team calls,
#: whose outcomes come back); the whole list is the output file. Its meta says ``rows`` (kept) and ``rows_scored``.
STORE_TOP_ROWS = 100_000
#: The column holding a row's position in the file, inside the pieces (never written out).
ROW_KEY = "__row__"


def memory_budget() -> int:
    """The memory budget in bytes (:data:`MEMORY_ENV`, default :data:`DEFAULT_MEMORY_MB`); ValueError naming the
    variable and the fix for a value that is not a whole number of MB of at least 64."""
    text = os.environ.get(MEMORY_ENV, "").strip()
    if not text:
        return DEFAULT_MEMORY_MB * 2**20
    try:
        mb = int(text)
    except ValueError:
        mb = -1
    if mb < 64:
        raise ValueError(
            f"{MEMORY_ENV}={text[:40]!r} is not a memory budget. Fix: set it to a whole number of MB, 64 or more "
            f"(e.g. {DEFAULT_MEMORY_MB}), or unset it."
        )
    return mb * 2**20


def is_csv(path: Path) -> bool:
    """Whether ``path`` holds CSV text (not an Excel, Parquet or other binary file), from its first 64 KiB."""
    with open(path, "rb") as f:
        head = f.read(65536)
    if not head.strip():
        return False
    try:
        return _detect_format(head, path.name)[0] == "csv"
    except LeadDataError:
        return False


def needs_chunks(path: Path, budget: int | None = None) -> bool:
    """Whether the CSV at ``path`` would take more than the memory budget read whole (so it is read in chunks)."""
    budget = memory_budget() if budget is None else budget
    return is_csv(path) and path.stat().st_size * MEMORY_PER_CSV_BYTE > budget


def over_row_limit(path: Path) -> bool:
    """Whether the CSV at ``path`` has more lines than the in-memory reader's row limit
    (:data:`engine.data.leads.reading.MAX_ROWS`): newlines counted in blocks, nothing parsed."""
    from engine.data.leads.reading import MAX_ROWS

    if path.stat().st_size <= 2 * MAX_ROWS or not is_csv(path):
        return False
    lines = 0
    with open(path, "rb") as f:
        while block := f.read(16 << 20):
            lines += block.count(b"\n")
            if lines > MAX_ROWS + 1:
                return True
    return False


def chunk_rows_for(path: Path, budget: int | None = None) -> int:
    """Rows a chunk of ``path`` may hold within the budget (a quarter of it: the chunk is held more than once
    while it is shaped and scored), from the mean length of its first lines."""
    budget = memory_budget() if budget is None else budget
    with open(path, "rb") as f:
        head = f.read(1 << 20)
    lines = max(head.count(b"\n"), 1)
    per_row = max(len(head) / lines, 1.0) * MEMORY_PER_CSV_BYTE
    return int(min(MAX_CHUNK_ROWS, max(MIN_CHUNK_ROWS, budget / 4 / per_row)))


# -- reading ----------------------------------------------------------------------------------------
@dataclass
class CsvFile:
    """A CSV checked for chunked reading: its encoding, delimiter and header."""

    path: Path
    label: str
    encoding: str
    delimiter: str
    columns: list[str]


def _encoding(path: Path) -> str:
    """The encoding the in-memory reader (:func:`engine.data.sources.decode_text`) would pick, found by decoding the
    file in blocks: a byte-order mark's, else the first of :data:`engine.data.sources.TEXT_ENCODINGS` that decodes
    it (UTF-8, Windows-1252, Latin-1)."""
    with open(path, "rb") as f:
        sniffed = sniff_encoding(f.read(4096))
    if sniffed is not None:
        return sniffed
    *tried, last = TEXT_ENCODINGS  # the last decodes any bytes
    for encoding in tried:
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with open(path, "rb") as f:
                while block := f.read(16 << 20):
                    decoder.decode(block)
            decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            continue
    return last


def open_csv(path: Path, label: str | None = None) -> CsvFile:
    """Check a CSV for chunked reading (:class:`LeadDataError` naming the problem and the fix): not empty, text
    (not binary), a header of unique names, at most :data:`MAX_COLS` columns."""
    path, label = Path(path), label or Path(path).name
    with open(path, "rb") as f:
        head = f.read(1 << 18)
    if not head.strip():
        raise LeadDataError(f"{label} is empty (0 data bytes). Export the lead table again with its header and rows.")
    encoding = _encoding(path)
    fmt, _ = _detect_format(head, label)  # binary files are refused here with the fix
    if fmt != "csv":
        raise LeadDataError(f"{label} is a {fmt} file: only CSV is read in chunks. {_FORMATS_HINT}")
    text = head.decode(encoding, errors="ignore")
    delimiter = _sniff_delimiter(text)
    columns = _header_fields(text, delimiter)
    _check_duplicates(columns, label)
    if len(columns) > MAX_COLS:
        raise LeadDataError(
            f"{label} has {len(columns):,} columns, more than the limit of {MAX_COLS:,}. Remove columns that are "
            "not lead attributes."
        )
    return CsvFile(path, label, encoding, delimiter, columns)


def iter_chunks(csv: CsvFile, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The file's rows in chunks of ``chunk_rows``, as text (missing cells NaN, as pandas reads them), indexed by
    their position in the file; a malformed row is a :class:`LeadDataError` naming where."""
    reader = pd.read_csv(
        csv.path,
        encoding=csv.encoding,
        sep=csv.delimiter,
        skipinitialspace=True,
        dtype=str,
        chunksize=chunk_rows,
    )
    start = 0
    with reader:
        while True:
            try:
                chunk = next(reader)
            except StopIteration:
                return
            except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
                raise LeadDataError(
                    f"{csv.label} could not be read after row {start:,} ({str(exc).strip()[:300]}). Check that "
                    f"every row has the same number of fields, or {_FORMATS_HINT[0].lower() + _FORMATS_HINT[1:]}"
                ) from None
            if not len(chunk):
                continue
            chunk.columns = [str(c).strip() for c in chunk.columns]
            chunk.index = pd.RangeIndex(start, start + len(chunk))
            start += len(chunk)
            yield chunk


def _numbers_only(values: pd.Series) -> bool:
    """Whether every filled cell of a column of text reads as a number (what decides, over a whole column, whether
    :func:`engine.data.leads.prepare_features` reads a yes/no column as numbers or as text)."""
    cleaned = _clean_strings(values).dropna().unique()
    return all(_as_number(v) is not None for v in cleaned)


# -- scoring a piece ----------------------------------------------------------------------------------
class ChunkScorer:
    """Scores pieces of a file for one run: ``__call__(piece) -> frame`` of ``__row__``, ``probability`` and
    ``__report__`` (the piece's validation counts as JSON, on its first row). Loaded once per Ray worker
    (``map_batches``' callable class) or once here."""

    def __init__(self, run_id: str, runs_root: str, kinds: dict[str, str], source: str, model=None):
        from engine.runs import RunStore

        self.run = RunStore(Path(runs_root)).get(run_id)
        self.model = model if model is not None else self.run.load_approach()
        self.kinds, self.source = kinds, source

    def __call__(self, piece: pd.DataFrame) -> pd.DataFrame:
        rows = piece[ROW_KEY].to_numpy(dtype=np.int64)
        raw = piece.drop(columns=[ROW_KEY]).reset_index(drop=True)
        X, report = prepare_rows(self.run, raw, self.source, kinds=self.kinds)
        # unseen values in full (the top ten are taken over the whole file)
        report.unseen_values = _all_unseen(self.run, X, rows)
        proba = np.round(np.asarray(self.model.predict_proba(X))[:, 1].astype(np.float64), PROBA_DECIMALS)
        notes = [""] * len(rows)
        notes[0] = json.dumps(report.to_dict())
        return pd.DataFrame({ROW_KEY: rows, "probability": proba, "__report__": notes})


def _all_unseen(run, X: pd.DataFrame, rows: np.ndarray) -> dict[str, dict[str, list[int]]]:
    """Values never seen in training, every one: ``{column: {value: [rows, first row in the file]}}`` (the whole
    file's top ten are taken once the pieces are added up: by rows, then by where they first appear)."""
    from engine.scoring import load_training_profile
    from engine.storage import CorruptFile

    try:
        profile = load_training_profile(run) or {}
    except CorruptFile:  # prepare_rows said so in the report's ``unchecked``
        return {}
    out = {}
    for col, entry in (profile.get("columns") or {}).items():
        seen = entry.get("categories")
        if col not in X.columns or seen is None or not entry.get("categories_complete", True):
            continue
        filled = X[col].notna().to_numpy()
        text = X[col][filled].astype(str)
        new = ~text.isin(set(seen)).to_numpy()
        if new.any():
            found = pd.DataFrame({"v": text.to_numpy()[new], "r": rows[filled][new]}).groupby("v", sort=False)["r"]
            counts = found.agg(["size", "min"])
            out[col] = {str(v): [int(n), int(r)] for v, (n, r) in zip(counts.index, counts.to_numpy())}
    return out


class _Report:
    """The validation reports of the pieces, added up into the whole file's."""

    def __init__(self):
        self.first: dict | None = None
        self.rows = 0
        self.unseen: dict[str, dict[str, list[int]]] = {}
        self.unparsed: Counter = Counter()
        self.read_as_missing: dict[str, Counter] = {}

    def add(self, text: str) -> None:
        part = json.loads(text)
        self.first = self.first or part
        self.rows += int(part["rows"])
        for col, values in part["unseen_values"].items():
            held = self.unseen.setdefault(col, {})
            for value, (n, first) in values.items():
                before = held.get(value, [0, first])
                held[value] = [before[0] + n, min(before[1], first)]
        self.unparsed.update(part["unparsed"])
        for col, codes in part["read_as_missing"].items():
            self.read_as_missing.setdefault(col, Counter()).update(codes)

    def report(self, profile_columns: list[str]) -> ValidationReport:
        first = self.first or {}
        unseen = {}
        for col in profile_columns:  # in the profile's order, as the in-memory check lists them
            if col in self.unseen:
                top = sorted(self.unseen[col].items(), key=lambda kv: (-kv[1][0], kv[1][1]))[:10]
                unseen[col] = {value: n for value, (n, _) in top}
        return ValidationReport(
            rows=self.rows,
            used_columns=first.get("used_columns", []),
            missing_columns=first.get("missing_columns", []),
            ignored_columns=first.get("ignored_columns", []),
            unseen_values=unseen,
            unparsed={c: n for c, n in self.unparsed.items() if n},
            read_as_missing={c: dict(v) for c, v in self.read_as_missing.items()},
            unchecked=first.get("unchecked", []),
        )


# -- the whole file -----------------------------------------------------------------------------------
@dataclass
class FileScored:
    """A file scored in chunks: what :class:`engine.scoring.Scored` says, without the table (it is in ``out``)."""

    run_id: str
    approach: str
    out: Path
    rows: int
    report: ValidationReport
    explained_rows: int
    tiers: dict[str, int]
    id_columns: list[str]
    metrics: dict | None = None
    outcome_rows: int = 0
    chunk_rows: int = 0
    chunks: int = 0
    shift: dict | None = None
    shift_problem: str | None = None
    #: seconds: ``read`` (to pieces), ``score``, ``first_rows`` (from the start to the first ranked rows written),
    #: ``total``
    seconds: dict[str, float] = field(default_factory=dict)
    ray: bool = False

    @property
    def summary(self) -> dict:
        return {
            "run_id": self.run_id,
            "approach": self.approach,
            "rows": int(self.rows),
            "explained_rows": int(self.explained_rows),
            "tiers": dict(self.tiers),
            "report": self.report.to_dict(),
            "messages": self.report.messages(),
            "metrics": self.metrics,
            "outcome_rows": int(self.outcome_rows),
            "id_columns": list(self.id_columns),
            "chunked": {"chunk_rows": self.chunk_rows, "chunks": self.chunks, "ray": self.ray},
        }


def score_file(
    run,
    path,
    out,
    *,
    model=None,
    explain: int | str | None = None,
    chunk_rows: int | None = None,
    ray_address: str | None = None,
    label: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    top_out=None,
    top_rows: int = 0,
) -> FileScored:
    """Score the lead CSV at ``path`` with ``run`` in chunks and write the ranked list to ``out`` (see the module
    doc). ``explain``: rows from the top that get reasons (``None``: the approach's budget, ``"all"``); ``chunk_rows``:
    default from :func:`memory_budget`; ``progress(stage, done, total)``; ``top_out``: also write the first
    ``top_rows`` ranked rows there (what the scored-list store keeps). Raises :class:`ScoringError` /
    :class:`LeadDataError` naming the problem; ``out`` is written whole or not at all."""
    started = time.perf_counter()
    if run.settings.input_kind != "leads":
        raise ScoringError(f"run {run.id} scores transcripts; only lead tables are scored in chunks.")
    path, out = Path(path), Path(out)
    csv = open_csv(path, label)
    chunk_rows = chunk_rows or chunk_rows_for(path)
    say = progress or (lambda stage, done, total: None)
    if model is None and not ray_address:  # loaded once: it scores the pieces and explains the top rows
        model = run.load_approach()
    work = Path(tempfile.mkdtemp(prefix=".clab-chunks-", dir=out.parent))
    try:
        pieces, kinds, sample, outcome = _spill(run, csv, chunk_rows, work / "pieces", say)
        n = sum(rows for _, rows in pieces)
        if n == 0:
            raise ScoringError(f"{csv.label} has no rows to score (a header only?). Fix: give a file with rows.")
        read_seconds = time.perf_counter() - started
        proba, report = _score_pieces(run, model, pieces, kinds, csv.label, ray_address, n, say)
        check_finite(run, proba)
        score_seconds = time.perf_counter() - started - read_seconds
        if model is None and explain != 0:
            model = run.load_approach()
        explained, tiers, first = _write_ranked(
            run, model, csv, pieces, proba, kinds, explain, work, out, say, top_out, top_rows, started
        )
        metrics, n_outcomes = _metrics(run, outcome, proba)
        from engine.scoring import shift_check

        shift, problem = shift_check(run, sample, csv.label) if sample is not None else (None, None)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return FileScored(
        run_id=run.id,
        approach=run.settings.approach,
        out=out,
        rows=n,
        report=report,
        explained_rows=explained,
        tiers=tiers,
        id_columns=identifier_columns(run, csv.columns),
        metrics=metrics,
        outcome_rows=n_outcomes,
        chunk_rows=chunk_rows,
        chunks=len(pieces),
        shift=shift,
        shift_problem=problem,
        seconds={
            "read": round(read_seconds, 3),
            "score": round(score_seconds, 3),
            "first_rows": round(first, 3),
            "total": round(time.perf_counter() - started, 3),
        },
        ray=bool(ray_address),
    )


def _spill(run, csv: CsvFile, chunk_rows: int, folder: Path, say):
    """Read the file once into Parquet pieces; return ``(pieces [(path, rows)], kinds fixed for the whole file,
    shift sample, outcome column as a categorical or None)``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir()
    settings = run.settings
    binary = [c for c in settings.columns if settings.kinds.get(c) == "binary" and c in csv.columns]
    numbers_only = dict.fromkeys(binary, True)
    target = settings.outcome if settings.outcome in csv.columns else None
    outcome_parts: list[pd.Categorical] = []
    rng = np.random.default_rng(0)
    sample, sample_keys = None, np.empty(0)
    pieces = []
    for i, chunk in enumerate(iter_chunks(csv, chunk_rows)):
        for col in binary:
            if numbers_only[col]:
                numbers_only[col] = _numbers_only(chunk[col])
        if target:
            outcome_parts.append(pd.Categorical(chunk[target]))
        keys = rng.random(len(chunk))
        merged = chunk if sample is None else pd.concat([sample, chunk])
        merged_keys = np.r_[sample_keys, keys]
        keep = np.sort(np.argsort(merged_keys, kind="stable")[:SHIFT_SAMPLE_ROWS])
        sample, sample_keys = merged.iloc[keep], merged_keys[keep]
        table = pa.Table.from_pandas(chunk.assign(**{ROW_KEY: chunk.index.to_numpy()}), preserve_index=False)
        piece = folder / f"part-{i:05d}.parquet"
        pq.write_table(table, piece)
        pieces.append((piece, len(chunk)))
        say("read", int(chunk.index[-1]) + 1, 0)
    # a yes/no column with text in it anywhere is text in every chunk, as it is when the file is read whole
    kinds = {**settings.kinds, **{c: "categorical" for c, only in numbers_only.items() if not only}}
    outcome = None
    if outcome_parts:
        from pandas.api.types import union_categoricals

        outcome = union_categoricals(outcome_parts)
    return pieces, kinds, (sample.reset_index(drop=True) if sample is not None else None), outcome


def _read_piece(piece: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    frame = pq.read_table(piece).to_pandas()
    return frame


def _score_pieces(run, model, pieces, kinds, label, ray_address, n, say) -> tuple[np.ndarray, ValidationReport]:
    """Every row's probability, in the file's order, and the added-up validation report."""
    proba = np.full(n, np.nan)
    report = _Report()
    runs_root = str(run.path.parent)
    if ray_address:
        batches = _ray_batches(run.id, runs_root, kinds, label, pieces, ray_address)
    else:
        scorer = ChunkScorer(run.id, runs_root, kinds, label, model=model)
        batches = (scorer(_read_piece(piece)) for piece, _ in pieces)
    done = 0
    for batch in batches:
        rows = np.asarray(batch[ROW_KEY], dtype=np.int64)
        proba[rows] = np.asarray(batch["probability"], dtype=np.float64)
        for text in batch["__report__"]:
            if text:
                report.add(str(text))
        done += len(rows)
        say("score", done, n)
    from engine.scoring import load_training_profile
    from engine.storage import CorruptFile

    try:
        profile = load_training_profile(run) or {}
    except CorruptFile:
        profile = {}
    return proba, report.report(list((profile.get("columns") or {}).keys()))


def _ray_batches(run_id, runs_root, kinds, label, pieces, address):
    """The pieces scored by Ray Data: ``read_parquet`` -> ``map_batches(ChunkScorer)`` (the run loaded once per
    worker; the workers read the run from this workspace, so it must be on a file system they share)."""
    import ray

    from engine.curves import _ray_env, ray_init_address

    saved = os.environ.pop("RAY_ADDRESS", None)  # ray.init reads it before its argument
    try:
        ray.init(address=ray_init_address(address), runtime_env={"env_vars": _ray_env()}, log_to_driver=False)
    finally:
        if saved is not None:
            os.environ["RAY_ADDRESS"] = saved
    try:
        cpus = max(int(ray.cluster_resources().get("CPU", 1)), 1)
        ds = ray.data.read_parquet([str(p) for p, _ in pieces])
        scored = ds.map_batches(
            ChunkScorer,
            fn_constructor_kwargs={"run_id": run_id, "runs_root": runs_root, "kinds": kinds, "source": label},
            batch_format="pandas",
            batch_size=max(rows for _, rows in pieces),
            concurrency=(1, cpus),
            num_cpus=1,
        )
        yield from scored.iter_batches(batch_format="pandas", batch_size=None)
    finally:
        ray.shutdown()


def _metrics(run, outcome, proba) -> tuple[dict | None, int]:
    if outcome is None:
        return None, 0
    from engine.data.leads import map_target
    from engine.evaluate import compute_metrics

    try:
        y, mask = map_target(pd.Series(np.asarray(outcome, dtype=object)), run.settings.outcome)
    except ValueError:
        return None, 0
    if mask.sum() == 0:
        return None, 0
    y = y.astype(int)
    metrics = compute_metrics(y, proba[mask], n_boot=500) if len(np.unique(y)) == 2 else None
    return metrics, int(mask.sum())


def _write_ranked(run, model, csv, pieces, proba, kinds, explain, work, out, say, top_out, top_rows, started):
    """Write the ranked list to ``out`` (a temporary file beside it, renamed when whole); returns (rows with reasons,
    rows per tier, seconds from ``started`` to the first ranked rows written)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = len(proba)
    order = np.argsort(-proba, kind="stable")
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = np.arange(1, n + 1)
    scores, tiers = run_scores(run, proba)
    budget = n if explain == "all" else (explain_budget(run.settings.approach) if explain is None else int(explain))
    budget = min(max(budget, 0), n)
    bucket_rows = max(rows for _, rows in pieces)
    buckets = work / "buckets"
    buckets.mkdir()
    writers: dict[int, pq.ParquetWriter] = {}
    try:  # spread each piece's rows into the rank buckets
        for piece, _ in pieces:
            frame = _read_piece(piece)
            which = (ranks[frame[ROW_KEY].to_numpy(dtype=np.int64)] - 1) // bucket_rows
            for b in np.unique(which):
                table = pa.Table.from_pandas(frame[which == b], preserve_index=False)
                if b not in writers:
                    writers[b] = pq.ParquetWriter(buckets / f"bucket-{b:05d}.parquet", table.schema)
                writers[b].write_table(table)
    finally:
        for w in writers.values():
            w.close()
    has_ids = bool(identifier_columns(run, csv.columns))
    flags, flagged = flag_columns(run.settings), run.settings.flagged
    explained, first = 0, 0.0
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
    os.close(fd)
    tmp, top_tmp = Path(tmp_name), None
    try:
        top_handle = None
        if top_out is not None and top_rows > 0:
            top_tmp = Path(top_out)
            top_handle = open(top_tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed below
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            written = 0
            for b in sorted(writers):
                frame = pq.read_table(buckets / f"bucket-{b:05d}.parquet").to_pandas()
                rows = frame[ROW_KEY].to_numpy(dtype=np.int64)
                frame = frame.iloc[np.argsort(ranks[rows], kind="stable")].reset_index(drop=True)
                rows = frame[ROW_KEY].to_numpy(dtype=np.int64)
                raw = frame.drop(columns=[ROW_KEY])
                reasons: dict[int, dict] = {}
                top = np.flatnonzero(ranks[rows] <= budget)
                if len(top):
                    X, _ = prepare_rows(run, raw.iloc[top].reset_index(drop=True), csv.label, kinds=kinds)
                    found = top_factors(model.explain(X), flags=flags, flagged=flagged)
                    reasons = {int(top[r]): f for r, f in found.items()}
                    explained += len(reasons)
                table = _ranked_table(raw, rows, ranks, proba, scores, tiers, reasons, has_ids)
                text = neutralise_frame(table).to_csv(index=False, header=written == 0, lineterminator="\r\n")
                handle.write(text)
                if top_handle is not None and written < top_rows:
                    head = neutralise_frame(table.head(top_rows - written))
                    top_handle.write(head.to_csv(index=False, header=written == 0, lineterminator="\r\n"))
                written += len(table)
                if not first:
                    handle.flush()
                    first = time.perf_counter() - started
                say("write", written, n)
        if top_handle is not None:
            top_handle.close()
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        if top_tmp is not None:
            top_tmp.unlink(missing_ok=True)
        raise
    counts = {} if tiers is None else {str(k): int(v) for k, v in pd.Series(tiers).value_counts().items()}
    return explained, counts, first


def _ranked_table(raw, rows, ranks, proba, scores, tiers, reasons, has_ids) -> pd.DataFrame:
    """One bucket of the ranked list, as :func:`engine.scoring._table` lays a whole one out."""
    out = raw.copy()
    taken = {str(c) for c in out.columns}
    names = {c: _output_name(c, taken) for c in SCORE_COLUMNS}
    out[names["rank"]] = ranks[rows].astype(int)
    out[names["probability"]] = np.round(proba[rows], 6)
    out[names["score"]] = scores[rows]
    out[names["tier"]] = tiers[rows] if tiers is not None else None
    m = len(out)
    out[names["reasons_for"]] = [
        "; ".join(f["text"] for f in reasons[i]["for"]) if i in reasons else "" for i in range(m)
    ]
    out[names["reasons_against"]] = [
        "; ".join(f["text"] for f in reasons[i]["against"]) if i in reasons else "" for i in range(m)
    ]
    out[names["has_reasons"]] = [i in reasons for i in range(m)]
    if not has_ids:
        out.insert(0, _output_name(ROW_COLUMN, taken), rows + 1)
    return out


# -- an upload (the Score page) ---------------------------------------------------------------------------
def upload_needs_chunks(data: bytes, filename: str | None = None) -> bool:
    """Whether an uploaded lead file (bytes) is a CSV over the memory budget or the in-memory row limit, so the
    Score page scores it with :func:`score_upload`."""
    from engine.data.leads.reading import MAX_ROWS

    try:
        if _detect_format(data[:65536], filename)[0] != "csv":
            return False
    except LeadDataError:
        return False
    return len(data) * MEMORY_PER_CSV_BYTE > memory_budget() or data.count(b"\n") > MAX_ROWS + 1


def score_upload(run, data: bytes, filename: str, model=None, top_rows: int = 0) -> tuple[FileScored, Path, Path]:
    """An uploaded CSV scored in chunks into a folder of its own in the system's temporary folder: ``(result, the
    ranked list, its first top_rows rows)``; the caller removes the folder (``out.parent``) when done with it."""
    folder = Path(tempfile.mkdtemp(prefix="clab-upload-"))
    try:
        source = folder / "upload.csv"
        source.write_bytes(data)
        top = folder / "top.csv"
        scored = score_file(
            run, source, folder / "ranked.csv", model=model, label=filename, top_out=top, top_rows=top_rows or 1
        )
        source.unlink()
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return scored, folder / "ranked.csv", top


def store_top(scored: FileScored, source: str, top_file: Path, shift: dict | None = None) -> dict:
    """Keep the top :data:`STORE_TOP_ROWS` rows of a list scored in chunks (``top_file``, written by
    :func:`score_file`'s ``top_out``) in the scored-list store; returns its meta (``kept`` says what was kept)."""
    from types import SimpleNamespace

    from engine.scored_lists import ScoredStore

    kept = min(scored.rows, STORE_TOP_ROWS)
    part = SimpleNamespace(
        run_id=scored.run_id, approach=scored.approach, summary={**scored.summary, "rows": kept}, proba=None
    )
    extra = {"rows_scored": scored.rows, "kept": f"the top {kept:,} of {scored.rows:,} rows"}
    if shift:
        extra["shift"] = {"verdict": shift.get("verdict"), "adversarial_auc": shift.get("adversarial_auc")}
    return ScoredStore().add(part, source, csv_bytes=Path(top_file).read_bytes(), extra=extra)
