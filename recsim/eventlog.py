"""The event log: one row per event, streamed to Parquet in row groups.

Columns (see README "Outputs"): ``time`` (s since the end of the warm-up), ``user_id``,
``session`` (the user's session number), ``event`` (session_start, impression, click, watch,
session_end, survey, churn, break, retrain), ``item_id`` (-1 if none), ``position`` (1-based slate rank, 0 if
none), ``watch_time`` (s), ``watch_fraction``, ``survey_score`` (1–5), and the hidden truth of
watched items for analysis only — ``true_value``, ``true_extremeness``, ``true_allure`` — which
no policy ever reads; and ``oracle``, constant per file, true when the policy read hidden state.

Rows come from one event at a time (:meth:`EventLog.add`, :meth:`EventLog.add_impressions`)
or whole columns at once (:meth:`EventLog.add_rows`: both engines hand over their buffered rows
this way); either way they are written in the order they are given. With ``outputs.event_sample`` < 1
only the users with ids below ``user_limit`` are logged (and ``retrain`` rows, user -1).
"""

from __future__ import annotations

import sys
from itertools import chain
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["EVENT_TYPES", "EVENT_CODES", "EVENT_SCHEMA", "EventLog", "event_codes"]

EVENT_TYPES = (
    "session_start",
    "impression",
    "click",
    "watch",
    "session_end",
    "survey",
    "churn",
    "break",  # the policy served an empty slate: it ended the session (break suggestion)
    "retrain",  # a learned policy refit on the logs (user_id -1)
)
#: event name -> the int8 code stored in the ``event`` column (its dictionary index)
EVENT_CODES: dict[str, int] = {name: i for i, name in enumerate(EVENT_TYPES)}
_CODE = EVENT_CODES
NAN = float("nan")

EVENT_SCHEMA = pa.schema(
    [
        ("time", pa.float64()),
        ("user_id", pa.int32()),
        ("session", pa.int32()),
        ("event", pa.dictionary(pa.int8(), pa.string())),
        ("item_id", pa.int32()),
        ("position", pa.int16()),
        ("watch_time", pa.float64()),
        ("watch_fraction", pa.float64()),
        ("survey_score", pa.float64()),
        ("true_value", pa.float64()),
        ("true_extremeness", pa.float64()),
        ("true_allure", pa.float64()),
        ("oracle", pa.bool_()),
    ]
)

_COLUMNS = [f.name for f in EVENT_SCHEMA][:-1]  # `oracle` is constant per file
#: the buffered columns (integers widened; the schema's types are applied when writing)
_ROW_DTYPE = np.dtype(
    [(name, {"time": "f8", "event": "i1"}.get(name, "i8" if i < 6 else "f8")) for i, name in enumerate(_COLUMNS)]
)
_DICTIONARY_COLUMNS = ["user_id", "session", "event", "item_id", "position", "oracle"]
#: what :meth:`EventLog.add_rows` fills in for a column it is not given
_DEFAULTS = {"item_id": -1, "position": 0, **{name: NAN for name in _COLUMNS[6:]}}
_REQUIRED = ("time", "user_id", "session", "event")
_NOBODY = -2  # a user limit no user id (not even retrain's -1) is below: nothing is logged


def event_codes(names) -> np.ndarray:
    """Event names (a sequence or array of strings, e.g. ``"watch"``) as the int8 codes of
    the ``event`` column (see :data:`EVENT_CODES`); a KeyError names an unknown event."""
    names = np.asarray(names)
    if names.ndim != 1:
        names = names.reshape(-1)
    kinds, inverse = np.unique(names, return_inverse=True)
    try:
        table = np.array([_CODE[str(k)] for k in kinds], dtype=np.int8)
    except KeyError as exc:
        raise KeyError(f"unknown event {exc.args[0]!r}; expected one of {', '.join(EVENT_TYPES)}") from None
    return table[inverse.reshape(-1)] if kinds.shape[0] else np.empty(0, dtype=np.int8)


class EventLog:
    """Buffers events and writes a row group every ``chunk_rows`` rows.

    ``path=None`` keeps nothing (used when events are not wanted, e.g. in some tests);
    :meth:`close` must be called to finish the file.

    ``user_limit`` (``outputs.event_sample``): only events of users with ``user_id <
    user_limit`` are kept — the rest are dropped on arrival, one integer comparison — and
    ``retrain`` rows (user -1) always; ``None`` keeps every user. ``groups`` (``(name, first
    id, end id)`` of the modelled users and each scripted group) adds a ``group`` column, and
    keeps every row of scripted users whatever ``user_limit``.

    Buffering is the engine's hot path, so a call stores one tuple (a whole slate for
    :meth:`add_impressions`, whole columns for :meth:`add_rows`) and the columns are built
    with NumPy when a row group is written; rows keep the order of the calls.
    """

    def __init__(
        self,
        path: Path | None,
        chunk_rows: int = 200_000,
        log_impressions: bool = True,
        oracle: bool = False,
        user_limit: int | None = None,
        groups: list[tuple[str, int, int]] | None = None,
    ):
        self.path = path
        self.oracle = oracle
        self.chunk_rows = chunk_rows
        self.log_impressions = log_impressions
        self.user_limit = user_limit
        # events of users below these limits are kept (one comparison per call)
        limit = _NOBODY if path is None else (sys.maxsize if user_limit is None else int(user_limit))
        self._limit = limit
        self._impression_limit = limit if log_impressions else _NOBODY
        #: ``(name, first id, end id)`` of the user groups (scripted users after the modelled
        #: ones): a ``group`` column names each row's, and scripted users' rows are always kept
        self.groups = groups if groups and len(groups) > 1 else None
        self._keep_from = self.groups[1][1] if self.groups and path is not None else sys.maxsize
        self._impression_keep_from = self._keep_from if log_impressions else sys.maxsize
        self.schema = EVENT_SCHEMA if self.groups is None else EVENT_SCHEMA.append(
            pa.field("group", pa.dictionary(pa.int8(), pa.string())))
        self.n_rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._reset_buffers()

    def _reset_buffers(self) -> None:
        self._rows: list[tuple] = []  # one event each: the 12 columns of _COLUMNS (codes for event)
        self._rows_at: list[int] = []  # their row numbers in the buffer
        self._slates: list[tuple[float, int, int, list[int]]] = []  # (time, user, session, items)
        self._slates_at: list[int] = []  # row number of each slate's first impression
        self._blocks: list[tuple[int, dict[str, np.ndarray]]] = []  # (first row number, columns)
        self._n = 0  # rows buffered

    def add(
        self,
        time: float,
        user: int,
        session: int,
        event: str,
        item: int = -1,
        position: int = 0,
        watch_time: float = NAN,
        watch_fraction: float = NAN,
        survey_score: float = NAN,
        true_value: float = NAN,
        true_extremeness: float = NAN,
        true_allure: float = NAN,
    ) -> None:
        if self._limit <= user < self._keep_from:
            return
        self._rows.append((time, user, session, _CODE[event], item, position, watch_time,
                           watch_fraction, survey_score, true_value, true_extremeness, true_allure))
        n = self._n
        self._rows_at.append(n)
        self._n = n + 1
        if n + 1 >= self.chunk_rows:
            self.flush()

    def add_impressions(self, time: float, user: int, session: int, slate: list[int]) -> None:
        """One ``impression`` row per slate position (1-based), if impressions are logged."""
        if self._impression_limit <= user < self._impression_keep_from:
            return
        self._slates.append((time, user, session, slate))
        n = self._n
        self._slates_at.append(n)
        self._n = n = n + len(slate)
        if n >= self.chunk_rows:
            self.flush()

    def add_rows(self, columns: dict[str, np.ndarray]) -> None:
        """Append many rows at once, given as whole columns (the batched engine's path).

        ``columns`` maps column names of the event log to equal-length 1-D arrays, rows already
        in the order they are to be written: ``time``, ``user_id``, ``session`` and ``event``
        are required (``event`` as int8 codes, see :func:`event_codes`, or as names); the others
        (``item_id``, ``position``, ``watch_time``, ``watch_fraction``, ``survey_score``,
        ``true_value``, ``true_extremeness``, ``true_allure``) default to -1, 0 and NaN. Rows of
        users outside the sample, and impression rows when impressions are not logged, are
        dropped. A row group is still written every ``chunk_rows`` rows.
        """
        if self.path is None:
            return
        unknown = set(columns) - set(_COLUMNS)
        missing = [name for name in _REQUIRED if name not in columns]
        if unknown or missing:
            raise ValueError(f"add_rows: unknown columns {sorted(unknown)}, missing columns {missing}")
        shapes = {name: np.shape(values) for name, values in columns.items()}
        if len(set(shapes.values())) != 1 or len(next(iter(shapes.values()))) != 1:
            raise ValueError(f"add_rows: expected 1-D columns of one length, got shapes {shapes}")
        n = next(iter(shapes.values()))[0]
        if n == 0:
            return
        event = np.asarray(columns["event"])
        if np.issubdtype(event.dtype, np.integer):
            if event.min() < 0 or event.max() >= len(EVENT_TYPES):
                raise ValueError(f"add_rows: event codes must be in [0, {len(EVENT_TYPES)})")
            event = event.astype(np.int8)
        else:
            event = event_codes(event)
        keep = None
        if self._limit < sys.maxsize:
            uid = np.asarray(columns["user_id"])
            keep = (uid < self._limit) | (uid >= self._keep_from)
        if not self.log_impressions:
            shown = event != _CODE["impression"]
            keep = shown if keep is None else keep & shown
        if keep is not None and keep.all():
            keep = None
        block = {}
        for name in _COLUMNS:
            if name == "event":
                values = event
            elif name in columns:
                # a copy when nothing is filtered out: the caller may reuse its arrays
                values = np.asarray(columns[name], dtype=_ROW_DTYPE[name])
                if keep is None and values is columns[name]:
                    values = values.copy()
            else:
                values = np.full(n, _DEFAULTS[name], dtype=_ROW_DTYPE[name])
            block[name] = values if keep is None else values[keep]
        n = block["time"].shape[0]
        done = 0
        while done < n:  # fill the buffer up to a row group, write it, go on
            take = min(n - done, max(self.chunk_rows - self._n, 1))
            self._blocks.append((self._n, {name: values[done:done + take] for name, values in block.items()}))
            self._n += take
            done += take
            if self._n >= self.chunk_rows:
                self.flush()

    def _columns(self) -> dict[str, np.ndarray]:
        """The buffered rows as one array per column of ``_COLUMNS``."""
        n = self._n
        cols = {name: np.empty(n, dtype=_ROW_DTYPE[name]) for name in _COLUMNS}
        single = np.zeros(n, dtype=bool)  # rows not from add_impressions
        if self._rows:
            at = np.array(self._rows_at, dtype=np.int64)
            single[at] = True
            rows = np.array(self._rows, dtype=_ROW_DTYPE)  # one C pass over the tuples
            for name in _COLUMNS:
                cols[name][at] = rows[name]
        for start, block in self._blocks:
            stop = start + block["time"].shape[0]
            single[start:stop] = True
            for name in _COLUMNS:
                cols[name][start:stop] = block[name]
        if self._slates:
            impression = ~single  # every other row belongs to a slate, in call order
            times, users, sessions, slates = zip(*self._slates)
            sizes = np.fromiter(map(len, slates), np.int64, len(slates))
            total = int(sizes.sum())
            cols["time"][impression] = np.repeat(np.array(times, dtype=float), sizes)
            cols["user_id"][impression] = np.repeat(np.array(users, dtype=np.int64), sizes)
            cols["session"][impression] = np.repeat(np.array(sessions, dtype=np.int64), sizes)
            cols["event"][impression] = _CODE["impression"]
            cols["item_id"][impression] = np.fromiter(chain.from_iterable(slates), np.int64, total)
            cols["position"][impression] = np.arange(1, total + 1) - np.repeat(np.cumsum(sizes) - sizes, sizes)
            for name in _COLUMNS[6:]:
                cols[name][impression] = NAN
        return cols

    def flush(self) -> None:
        if self.path is None or not self._n:
            return
        # whole columns alone (the engines' path) are written as they came, one chunk each:
        # the writer makes the same row group of them as of one concatenated block
        parts = [block for _, block in self._blocks] if not (self._rows or self._slates) else [self._columns()]
        table = pa.Table.from_batches([self._batch(cols) for cols in parts], schema=self.schema)
        self._open()
        self._writer.write_table(table)
        self.n_rows += table.num_rows
        self._reset_buffers()

    def _batch(self, cols: dict[str, np.ndarray]) -> pa.RecordBatch:
        """Buffered columns as a record batch of :attr:`schema`."""
        n = cols["time"].shape[0]
        arrays = []
        for field in self.schema:
            if field.name == "oracle":
                arrays.append(pa.array(np.full(n, self.oracle)))
            elif field.name == "event":
                codes = pa.array(cols["event"])
                arrays.append(pa.DictionaryArray.from_arrays(codes, pa.array(EVENT_TYPES)))
            elif field.name == "group":
                starts = np.array([lo for _, lo, _ in self.groups])
                codes = (np.searchsorted(starts, cols["user_id"], side="right") - 1).astype(np.int8)
                arrays.append(pa.DictionaryArray.from_arrays(
                    pa.array(codes, mask=cols["user_id"] < 0), pa.array([name for name, _, _ in self.groups])))
            else:
                # NaN (no such value for this kind of event) is stored as null: SQL-style
                # readers (duckdb, polars) then skip it in SUM / AVG
                arrays.append(pa.array(cols[field.name], type=field.type, from_pandas=True))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def _open(self) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # dictionary-encode only the columns with few distinct values: trying it on the
            # float columns costs more time than the whole write, for no gain in size
            self._writer = pq.ParquetWriter(
                self.path, self.schema, compression="zstd", use_dictionary=[*_DICTIONARY_COLUMNS, "group"]
            )

    def close(self) -> None:
        """Flush what is buffered and finish the file (an empty file if nothing was logged)."""
        if self.path is None:
            return
        self.flush()
        self._open()
        self._writer.close()
