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

import pandas as pd

from tasks.core.columns import MODEL_NAME, MODEL_VERSION, PREDICTION, SCORE, SCORED_AT
from tasks.core.config import Params
from tasks.data.row_rules import online_rules
from tasks.serving.champion import Champion
from tasks.serving.online.batcher import Batcher, QueueFull
from tasks.serving.online.canary import to_challenger
from tasks.serving.online.holder import LoadFailure, ModelHolder
from tasks.serving.online.metrics import Metrics
from tasks.serving.online.rows import Features, Rows, parse_rows
from tasks.serving.online.store import OnlineStore

log = logging.getLogger(__name__)

__all__ = ["QueueFull", "Service"]


class Service:
    def __init__(self, params: Params):
        api = params.api
        self.params = params
        self.metrics = Metrics()
        self.rules = online_rules(params)
        self.holder = ModelHolder(params, self._failed)
        self.batcher, self.shadow = (
            Batcher(
                api.max_batch_rows,
                api.max_wait_ms / 1000,
                api.max_queue_requests,
                self.metrics.batch_rows.labels(role).observe,
                api.torch_threads,
                api.inline_rows,
            )
            for role in ("served", "shadow")
        )
        self.store = OnlineStore(params)
        self._features: tuple[tuple[str | None, ...], Features] = ((), Features((), ()))
        self._background: set[asyncio.Task] = set()

    def _failed(self, failure: LoadFailure) -> None:
        self.metrics.load_failures.labels(failure.alias).inc()

    def _versions(self) -> None:
        for role, model in (("served", self.holder.served), ("challenger", self.holder.challenger)):
            self.metrics.model_version.labels(role).set(int(model.version) if model else 0)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Load the models, start the workers; at the end stop them, then the store's flushing
        (stopped, not cancelled: its last flush has written every answered row when the app
        has stopped)."""
        await self.holder.refresh()
        self._versions()
        api = self.params.api
        tasks = [
            asyncio.create_task(self.batcher.run()),
            asyncio.create_task(self.shadow.run()),
            asyncio.create_task(self.holder.follow_forever(self._versions)),
        ]
        flushing = asyncio.create_task(self.store.flush_forever(api.flush_seconds))
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
            self.store.stop()  # its last flush writes every row answered
            await flushing

    def rows(self, records: list[Any]) -> Rows:
        """The request's rows, typed and required as the loaded models read them (their
        columns worked out again only when a loaded version changes)."""
        models = (self.holder.served, self.holder.challenger)
        versions = tuple(m.version if m else None for m in models)
        if self._features[0] != versions:
            features = Features.of(*(m.featurizer for m in models if m is not None))
            self._features = (versions, features)
        return parse_rows(self.params, self.rules, records, self._features[1])

    async def predict(self, served: Champion, rows: Rows) -> dict[int, dict[str, Any]]:
        """Answers of the kept rows by position, the canary share scored by the challenger;
        QueueFull when the queue cannot take them."""
        ids = self.params.dataset.id_columns
        self.metrics.queue_depth.set(self.batcher.queue.qsize())
        challenger = self.holder.challenger
        positions, kept = list(rows.kept), list(rows.kept.values())
        if challenger is None or challenger.version == served.version:
            canary = [False] * len(kept)
        else:
            canary = to_challenger(kept, ids, self.params.api.canary_share)
        sides = [(served, False), (challenger, True)]
        parts = [
            (model, [(p, r) for p, r, c in zip(positions, kept, canary, strict=True) if c == side])
            for model, side in sides
        ]
        parts = [(model, part) for model, part in parts if part]
        scores = await asyncio.gather(
            *(self.batcher.submit(model, [r for _, r in part]) for model, part in parts)
        )
        answers: dict[int, dict[str, Any]] = {}
        for (model, part), scored in zip(parts, scores, strict=True):
            role = "served" if model is served else "canary"
            self.metrics.rows.labels(role, model.version).inc(len(part))
            for (position, row), score in zip(part, scored, strict=True):
                answers[position] = self._answer(model, row, float(score))
            self.store.add("incoming", [r for _, r in part])
            self.store.add("predictions", [self._record(answers[p], row) for p, row in part])
        if self.params.api.shadow and challenger is not None:
            self._shadow(
                challenger, served, [r for r, c in zip(kept, canary, strict=True) if not c]
            )
        return answers

    def _answer(self, model: Champion, row: dict[str, Any], score: float) -> dict[str, Any]:
        """One row's answer: its ids, the probability, the prediction, the version."""
        return {
            "status": 200,
            **{c: row[c] for c in self.params.dataset.id_columns},
            "probability": score,
            "prediction": int(score >= model.threshold),
            "model_name": model.name,
            "model_version": model.version,
        }

    def _record(self, answer: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
        """One row as the nightly predictions hold it (the online partition's columns)."""
        dataset = self.params.dataset
        return {
            **{c: row[c] for c in dataset.id_columns},
            dataset.event_time: row[dataset.event_time],
            SCORE: answer["probability"],
            PREDICTION: answer["prediction"],
            MODEL_NAME: answer["model_name"],
            MODEL_VERSION: answer["model_version"],
            SCORED_AT: pd.Timestamp.now(tz="UTC"),
        }

    def _shadow(self, challenger: Champion, served: Champion, rows: list[dict[str, Any]]) -> None:
        """The challenger scores a copy in the background: never awaited by the request."""
        if challenger.version == served.version or not rows:
            return

        async def score() -> None:
            try:
                scores = await self.shadow.submit(challenger, rows)
            except QueueFull:
                self.metrics.shadow_dropped.inc(len(rows))
                return
            self.metrics.rows.labels("shadow", challenger.version).inc(len(rows))
            records = [
                self._record(self._answer(challenger, row, float(s)), row)
                for row, s in zip(rows, scores, strict=True)
            ]
            self.store.add(
                "shadow", [{k: v for k, v in r.items() if k != SCORED_AT} for r in records]
            )

        task = asyncio.create_task(score())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
