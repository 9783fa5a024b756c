"""One request through the server: rows checked, split canary/served, queued, scored, recorded.

Everything a request touches lives here (the holder, the two batchers, the store, the metrics);
the app only maps HTTP onto it. A request binds the models it starts with, so a hot swap in the
middle of it changes nothing for it, and every answered row names the version that scored it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pandas as pd

from tasks.core.columns import MODEL_NAME, MODEL_VERSION, PREDICTION, SCORE, SCORED_AT
from tasks.core.config import Params
from tasks.data.row_rules import online_contract
from tasks.serving.champion import Champion
from tasks.serving.online.batcher import Batcher, QueueFull
from tasks.serving.online.canary import to_challenger
from tasks.serving.online.holder import LoadFailure, ModelHolder
from tasks.serving.online.metrics import Metrics
from tasks.serving.online.rows import Rows, parse_rows
from tasks.serving.online.store import OnlineStore

log = logging.getLogger(__name__)

__all__ = ["QueueFull", "Service"]


class Service:
    def __init__(self, params: Params):
        api = params.api
        self.params = params
        self.metrics = Metrics()
        self.contract = online_contract(params)
        self.holder = ModelHolder(params, self._failed)
        chunk = params.score.chunk_rows
        self.batcher = Batcher(
            api.max_batch_rows,
            api.max_wait_ms / 1000,
            api.max_queue_requests,
            chunk,
            lambda rows: self.metrics.batch_rows.labels("served").observe(rows),
        )
        self.shadow = Batcher(
            api.max_batch_rows,
            api.max_wait_ms / 1000,
            api.max_queue_requests,
            chunk,
            lambda rows: self.metrics.batch_rows.labels("shadow").observe(rows),
        )
        self.store = OnlineStore(params)
        self._background: set[asyncio.Task] = set()

    def _failed(self, failure: LoadFailure) -> None:
        self.metrics.load_failures.labels(failure.alias).inc()

    def _versions(self) -> None:
        for role, model in (("served", self.holder.served), ("challenger", self.holder.challenger)):
            self.metrics.model_version.labels(role).set(int(model.version) if model else 0)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Load the models, start the workers; at the end stop them and flush the store."""
        await self.holder.refresh()
        self._versions()
        api = self.params.api
        tasks = [
            asyncio.create_task(self.batcher.run()),
            asyncio.create_task(self.shadow.run()),
            asyncio.create_task(self.holder.follow_forever(self._versions)),
            asyncio.create_task(self.store.flush_forever(api.flush_seconds)),
        ]
        served = self.holder.served
        log.info(
            "api: serving %s (@%s) on http://%s:%d",
            f"{served.name} v{served.version}" if served else "nothing yet",
            api.alias,
            api.host,
            api.port,
        )
        try:
            yield
        finally:
            for task in [*tasks, *self._background]:
                task.cancel()
            await asyncio.gather(*tasks, *self._background, return_exceptions=True)
            self.batcher.close()
            self.shadow.close()
            await self.store.flush()

    def rows(self, records: list[Any]) -> Rows:
        return parse_rows(self.params, self.contract, records)

    async def predict(self, served: Champion, rows: Rows) -> list[dict[str, Any]]:
        """Scored rows (with their positions in the request), canary share to the challenger;
        QueueFull when the queue cannot take them."""
        ids, frame = self.params.dataset.id_columns, rows.frame
        self.metrics.queue_depth.set(self.batcher.queue.qsize())
        challenger = self.holder.challenger
        if challenger is None or challenger.version == served.version:
            canary = pd.Series(False, index=frame.index)
        else:
            canary = to_challenger(frame, ids, self.params.api.canary_share)
        parts = [(served, frame[~canary]), (challenger, frame[canary])]
        parts = [(model, part) for model, part in parts if len(part)]
        scores = await asyncio.gather(*(self.batcher.submit(m, p) for m, p in parts))
        answered = [self._answered(m, p, s) for (m, p), s in zip(parts, scores, strict=True)]
        for (model, part), table in zip(parts, answered, strict=True):
            role = "served" if model is served else "canary"
            self.metrics.rows.labels(role, model.version).inc(len(part))
            self.store.add("incoming", part)
            self.store.add("predictions", table)
        if self.params.api.shadow and challenger is not None and parts:
            self._shadow(challenger, served, frame[~canary])
        return [
            {"row": int(i), **row}
            for table in answered
            for i, row in zip(table.index, self._public(table), strict=True)
        ]

    def _answered(self, model: Champion, part: pd.DataFrame, scores: np.ndarray) -> pd.DataFrame:
        """Rows as the nightly predictions hold them (the online partition's columns)."""
        dataset = self.params.dataset
        table = part[[*dataset.id_columns, dataset.event_time]].copy()
        table[SCORE] = scores
        table[PREDICTION] = (scores >= model.threshold).astype(np.int8)
        table[MODEL_NAME] = model.name
        table[MODEL_VERSION] = model.version
        table[SCORED_AT] = pd.Timestamp.now(tz="UTC")
        return table

    def _public(self, table: pd.DataFrame) -> list[dict[str, Any]]:
        ids = self.params.dataset.id_columns
        return [
            {
                **{c: _plain(v) for c, v in zip(ids, key, strict=True)},
                "probability": float(score),
                "prediction": int(prediction),
                "model_name": name,
                "model_version": version,
            }
            for key, score, prediction, name, version in zip(
                table[ids].itertuples(index=False),
                table[SCORE],
                table[PREDICTION],
                table[MODEL_NAME],
                table[MODEL_VERSION],
                strict=True,
            )
        ]

    def _shadow(self, challenger: Champion, served: Champion, frame: pd.DataFrame) -> None:
        """The challenger scores a copy in the background: never awaited by the request."""
        if challenger.version == served.version or frame.empty:
            return

        async def score() -> None:
            try:
                scores = await self.shadow.submit(challenger, frame)
            except QueueFull:
                self.metrics.shadow_dropped.inc(len(frame))
                return
            table = self._answered(challenger, frame, scores).drop(columns=SCORED_AT)
            self.metrics.rows.labels("shadow", challenger.version).inc(len(frame))
            self.store.add("shadow", table)

        task = asyncio.create_task(score())
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _plain(value: Any) -> Any:
    """A numpy scalar as the JSON number or text it is."""
    return value.item() if isinstance(value, np.generic) else value
