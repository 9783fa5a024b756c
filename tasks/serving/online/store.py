"""Online traffic into the predictions store: the loop closes for requests as for batches.

Scored rows are buffered and written, per event day, as one new part file per flush under each
nightly folder's online partition (`online/D/part-*.parquet`, layout.online_day_dir): the
predictions (the nightly predictions' columns), the rows' features (incoming, what drift
compares) and the shadow scores. Each part is written atomically and never rewritten; the
features are written before the predictions, so a reader that finds a prediction finds its row.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.core.columns import PREDICTION, SCORE
from tasks.core.config import Params
from tasks.core.io import write_parquet
from tasks.core.layout import online_day_dir
from tasks.serving.online.rows import Features, to_frame

log = logging.getLogger(__name__)

# The three buffers, in the order they are written: a row's features before its prediction.
FOLDERS = ("incoming", "predictions", "shadow")


class OnlineStore:
    """Buffers of scored rows, flushed to part files by `flush` (a thread does the writing)."""

    def __init__(self, params: Params):
        cfg = params.score
        self.folders = {
            "incoming": cfg.incoming_dir,
            "predictions": cfg.predictions_dir,
            "shadow": cfg.shadow_dir,
        }
        self.params = params
        self.flush_rows = params.api.flush_rows
        self.buffers: dict[str, list[dict[str, Any]]] = {name: [] for name in FOLDERS}
        self.written = dict.fromkeys(FOLDERS, 0)
        self._writing = asyncio.Lock()
        self._stopping = asyncio.Event()

    def add(self, name: str, rows: list[dict[str, Any]]) -> None:
        """Buffer rows for one folder (they carry the event time: it picks the day)."""
        self.buffers[name].extend(rows)

    @property
    def buffered(self) -> int:
        return len(self.buffers["predictions"])

    async def flush(self) -> None:
        """Write what is buffered now; the buffers are swapped out first, so requests go on
        filling fresh ones while the files are written."""
        async with self._writing:
            taken = {name: self.buffers[name] for name in FOLDERS}
            self.buffers = {name: [] for name in FOLDERS}
            if any(taken.values()):
                await asyncio.to_thread(self._write, taken)

    def _write(self, taken: dict[str, list[dict[str, Any]]]) -> None:
        stamp = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"
        for name in FOLDERS:
            if not taken[name]:
                continue
            frame = self._frame(name, taken[name])
            days = frame[self.params.dataset.event_time].dt.date
            for day, rows in frame.groupby(days, sort=True):
                target = online_day_dir(Path(self.folders[name]), day) / f"part-{stamp}.parquet"
                write_parquet(target, rows.reset_index(drop=True))
            self.written[name] += len(frame)
            log.debug("api: %d online rows → %s/online/", len(frame), self.folders[name])

    def _frame(self, name: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
        """Buffered rows with the nightly files' types."""
        if name == "incoming":  # what drift compares: params' features (null where not sent)
            return to_frame(self.params, rows, Features.of(self.params.dataset.features))
        frame = pd.DataFrame.from_records(rows)
        return frame.astype({SCORE: "float32", PREDICTION: "int8"})

    async def flush_forever(self, seconds: float) -> None:
        """Flush every `seconds`, or sooner once `api.flush_rows` rows wait, and once more when
        `stop` is called; then return. Never cancelled mid-write: rows taken are rows written."""
        waited = 0.0
        step = min(seconds, 0.25)
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), step)
            waited += step
            if self._stopping.is_set() or waited >= seconds or self.buffered >= self.flush_rows:
                waited = 0.0
                try:
                    await self.flush()
                except OSError as exc:  # a full disk must not stop the serving (memory bounded)
                    log.error("api: online predictions not written, dropped (%s)", exc)

    def stop(self) -> None:
        """Ask `flush_forever` for its last flush."""
        self._stopping.set()
