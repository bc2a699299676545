"""The event log: one row per event, streamed to Parquet in row groups.

Columns (see README "Outputs"): ``time`` (s since the end of the warm-up), ``user_id``,
``session`` (the user's session number), ``event`` (session_start, impression, click, watch,
session_end, survey, churn, break, retrain), ``item_id`` (-1 if none), ``position`` (1-based slate rank, 0 if
none), ``watch_time`` (s), ``watch_fraction``, ``survey_score`` (1–5), and the hidden truth of
watched items for analysis only — ``true_value``, ``true_extremeness``, ``true_allure`` — which
no policy ever reads; and ``oracle``, constant per file, true when the policy read hidden state.
"""

from __future__ import annotations

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


class EventLog:
    """Buffers events in column lists and writes a row group every ``chunk_rows`` rows.

    ``path=None`` keeps nothing (used when events are not wanted, e.g. in some tests);
    :meth:`close` must be called to finish the file.
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
        self._buf: dict[str, list] = {name: [] for name in _COLUMNS}

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
        b = self._buf
        b["time"].append(time)
        b["user_id"].append(user)
        b["session"].append(session)
        b["event"].append(_CODE[event])
        b["item_id"].append(item)
        b["position"].append(position)
        b["watch_time"].append(watch_time)
        b["watch_fraction"].append(watch_fraction)
        b["survey_score"].append(survey_score)
        b["true_value"].append(true_value)
        b["true_extremeness"].append(true_extremeness)
        b["true_allure"].append(true_allure)
        if len(b["time"]) >= self.chunk_rows:
            self.flush()

    def add_impressions(self, time: float, user: int, session: int, slate: list[int]) -> None:
        """One ``impression`` row per slate position (1-based), if impressions are logged."""
        if self.path is None or not self.log_impressions:
            return
        n = len(slate)
        b = self._buf
        b["time"].extend([time] * n)
        b["user_id"].extend([user] * n)
        b["session"].extend([session] * n)
        b["event"].extend([_CODE["impression"]] * n)
        b["item_id"].extend(slate)
        b["position"].extend(range(1, n + 1))
        for name in ("watch_time", "watch_fraction", "survey_score", "true_value",
                     "true_extremeness", "true_allure"):
            b[name].extend([NAN] * n)
        if len(b["time"]) >= self.chunk_rows:
            self.flush()

    def flush(self) -> None:
        if self.path is None or not self._buf["time"]:
            return
        arrays = []
        n = len(self._buf["time"])
        for field in EVENT_SCHEMA:
            if field.name == "oracle":
                arrays.append(pa.array(np.full(n, self.oracle)))
                continue
            values = self._buf[field.name]
            if field.name == "event":
                codes = pa.array(np.asarray(values, dtype=np.int8))
                arrays.append(pa.DictionaryArray.from_arrays(codes, pa.array(EVENT_TYPES)))
            else:
                arrays.append(pa.array(values, type=field.type))
        table = pa.Table.from_arrays(arrays, schema=EVENT_SCHEMA)
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.path, EVENT_SCHEMA, compression="zstd")
        self._writer.write_table(table)
        self.n_rows += table.num_rows
        self._reset_buffers()

    def close(self) -> None:
        """Flush what is buffered and finish the file (an empty file if nothing was logged)."""
        if self.path is None:
            return
        self.flush()
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.path, EVENT_SCHEMA, compression="zstd")
        self._writer.close()
