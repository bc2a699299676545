"""The event log: one row per event, streamed to Parquet in row groups.

Columns (see README "Outputs"): ``time`` (s since the end of the warm-up), ``user_id``,
``session`` (the user's session number), ``event`` (session_start, impression, click, watch,
session_end, survey, churn, break, retrain), ``item_id`` (-1 if none), ``position`` (1-based slate rank, 0 if
none), ``watch_time`` (s), ``watch_fraction``, ``survey_score`` (1–5), and the hidden truth of
watched items for analysis only — ``true_value``, ``true_extremeness``, ``true_allure`` — which
no policy ever reads; and ``oracle``, constant per file, true when the policy read hidden state.
"""

from __future__ import annotations

from itertools import chain
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["EVENT_TYPES", "EVENT_SCHEMA", "EventLog"]

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
_CODE = {name: i for i, name in enumerate(EVENT_TYPES)}
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


class EventLog:
    """Buffers events and writes a row group every ``chunk_rows`` rows.

    ``path=None`` keeps nothing (used when events are not wanted, e.g. in some tests);
    :meth:`close` must be called to finish the file.

    Buffering is the engine's hot path, so a call stores one tuple (a whole slate for
    :meth:`add_impressions`) and the columns are built with NumPy when a row group is written;
    rows keep the order of the calls.
    """

    def __init__(
        self,
        path: Path | None,
        chunk_rows: int = 200_000,
        log_impressions: bool = True,
        oracle: bool = False,
    ):
        self.path = path
        self.oracle = oracle
        self.chunk_rows = chunk_rows
        self.log_impressions = log_impressions
        self.n_rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._reset_buffers()

    def _reset_buffers(self) -> None:
        self._rows: list[tuple] = []  # one event each: the 12 columns of _COLUMNS (codes for event)
        self._rows_at: list[int] = []  # their row numbers in the buffer
        self._slates: list[tuple[float, int, int, list[int]]] = []  # (time, user, session, items)
        self._slates_at: list[int] = []  # row number of each slate's first impression
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
        if self.path is None:
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
        if self.path is None or not self.log_impressions:
            return
        self._slates.append((time, user, session, slate))
        n = self._n
        self._slates_at.append(n)
        self._n = n = n + len(slate)
        if n >= self.chunk_rows:
            self.flush()

    def _columns(self) -> dict[str, np.ndarray]:
        """The buffered rows as one array per column of ``_COLUMNS``."""
        n = self._n
        cols = {name: np.empty(n, dtype=_ROW_DTYPE[name]) for name in _COLUMNS}
        single = np.zeros(n, dtype=bool)
        if self._rows:
            at = np.array(self._rows_at, dtype=np.int64)
            single[at] = True
            rows = np.array(self._rows, dtype=_ROW_DTYPE)  # one C pass over the tuples
            for name in _COLUMNS:
                cols[name][at] = rows[name]
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
        cols = self._columns()
        arrays = []
        for field in EVENT_SCHEMA:
            if field.name == "oracle":
                arrays.append(pa.array(np.full(self._n, self.oracle)))
            elif field.name == "event":
                codes = pa.array(cols["event"])
                arrays.append(pa.DictionaryArray.from_arrays(codes, pa.array(EVENT_TYPES)))
            else:
                arrays.append(pa.array(cols[field.name], type=field.type))
        table = pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)
        self._open()
        self._writer.write_table(table)
        self.n_rows += table.num_rows
        self._reset_buffers()

    def _open(self) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # dictionary-encode only the columns with few distinct values: trying it on the
            # float columns costs more time than the whole write, for no gain in size
            self._writer = pq.ParquetWriter(
                self.path, EVENT_SCHEMA, compression="zstd", use_dictionary=_DICTIONARY_COLUMNS
            )

    def close(self) -> None:
        """Flush what is buffered and finish the file (an empty file if nothing was logged)."""
        if self.path is None:
            return
        self.flush()
        self._open()
        self._writer.close()
