"""Read any lead table a CRM exports and turn it into model-ready features.

Public surface:

* :func:`read_table` — CSV (delimiter ``, ; TAB |`` sniffed; UTF-8, UTF-8 with BOM, UTF-16/UTF-32 with a
  byte-order mark, UTF-16 without one, cp1252/Latin-1), Excel ``.xlsx`` and Parquet, from a path,
  ``bytes`` or a file-like object (a Streamlit upload). The format comes from the file's magic bytes,
  then its extension.
* :func:`check_table` — the cheap checks :func:`read_table` makes before it parses: format, and the row
  and column limits (:data:`MAX_ROWS`, :data:`MAX_COLS`) counted from Parquet metadata, the Excel sheet's
  dimensions or the CSV's lines, so an oversized file is refused before its table is built.
* :func:`infer_kinds` — one kind per column: ``numeric``, ``binary``, ``categorical``,
  ``high_cardinality``, ``identifier``, ``text`` (``empty`` for a column with no value at all).
* :data:`LEAK_PRESETS` and :func:`describe_policy` — which columns the leak policy leaves out.
* :func:`load_leads` — read, clean, pick and map the target, apply the leak policy, drop identifiers
  and empty or constant columns, and return a :class:`LeadTable`.
* :func:`find_sentinels` — numbers that stand for "never"/"unknown" (999, -1); :func:`treat_missing` reads
  the codes a user chose (``missing_values``) as missing, each with a 0/1 flag column, in training and in
  :func:`prepare_features` alike.

Cleaning rules: the value ``Select`` (an unfilled form default in the X Education export), empty
strings and whitespace are missing. A text column whose filled values are at least 90 % numbers is
read as numeric; the rest of its values become missing and a warning counts them. In ``LeadTable.X``
numeric (and 0/1 binary) columns are ``float``; every other column holds strings (``"Yes"``/``"No"``
flags stay strings), missing values are ``NaN``.

Every problem with the input raises :class:`LeadDataError`, whose message names the problem and the
fix. Nothing here writes to disk.

The package by section: :mod:`.reading`, :mod:`.kinds` (cleaning and column kinds), :mod:`.codes` (numbers read
as missing), :mod:`.policy` (leak presets), :mod:`.target`, :mod:`.table` (load_leads, prepare_features); the
names of each are re-exported here. The size limits live in :mod:`.reading` (patch them there)."""

from __future__ import annotations

from engine.data.column_kinds import SETTABLE_KINDS, parse_kinds  # noqa: F401
from engine.data.leads.codes import (  # noqa: F401
    _forced_numbers,
    find_sentinels,
    flag_name,
    flags_of,
    number_text,
    treat_missing,
)
from engine.data.leads.kinds import (  # noqa: F401
    _DECIMAL_COMMA,
    _ID_NAME,
    HIGH_CARDINALITY_MIN,
    KINDS,
    NUMERIC_SHARE,
    TEXT_MIN_MEAN_LEN,
    _as_number,
    _clean_column,
    _clean_frame,
    _clean_strings,
    _factorize,
    _kind,
    infer_kinds,
    kinds_given_else_inferred,
)
from engine.data.leads.policy import (  # noqa: F401
    _AFTER_CONTACT,
    LEAK_PRESETS,
    _as_list,
    _check_policy,
    describe_policy,
)
from engine.data.leads.reading import (  # noqa: F401
    _FORMATS_HINT,
    _MAGIC,
    _PANDAS_INDEX,
    MAX_CELLS,
    MAX_COLS,
    MAX_ROWS,
    _check_duplicates,
    _check_size,
    _checked,
    _detect_format,
    _header_fields,
    _raw_bytes,
    _read,
    _read_csv,
    _read_excel,
    _read_parquet,
    _row_limit,
    _sniff_delimiter,
    _too_big,
    check_table,
    read_header,
    read_table,
)
from engine.data.leads.table import (  # noqa: F401
    LeadTable,
    _applicable,
    load_leads,
    prepare_features,
)
from engine.data.leads.target import (  # noqa: F401
    _column_list,
    find_target,
    map_target,
)
from engine.data.leads.words import (  # noqa: F401
    NEGATIVE,
    POSITIVE,
    TARGET_CANDIDATES,
    YES_NO,
    _norm,
)
from engine.data.missing_values import (  # noqa: F401
    MAX_MISSING_COLUMNS,
    MAX_MISSING_VALUES,
    MISSING_TOKENS,
    LeadDataError,
    MissingValues,
    check_missing_values,
    is_missing_text,
    parse_missing_values,
)

__all__ = [
    "LeadDataError",
    "LEAK_PRESETS",
    "KINDS",
    "TARGET_CANDIDATES",
    "HIGH_CARDINALITY_MIN",
    "MAX_ROWS",
    "MAX_COLS",
    "MAX_CELLS",
    "read_header",
    "read_table",
    "check_table",
    "infer_kinds",
    "kinds_given_else_inferred",
    "SETTABLE_KINDS",
    "parse_kinds",
    "describe_policy",
    "find_target",
    "map_target",
    "find_sentinels",
    "check_missing_values",
    "parse_missing_values",
    "MissingValues",
    "MAX_MISSING_VALUES",
    "MAX_MISSING_COLUMNS",
    "treat_missing",
    "flag_name",
    "load_leads",
    "LeadTable",
]
