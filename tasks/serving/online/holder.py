"""The served model and the challenger, followed through their aliases (hot swap).

A poll reads the aliases; when one names another version, that version is loaded off the event
loop and then swapped in by one assignment: a request binds the model it starts with, so
requests in flight finish on their version. A version that fails to load (a missing file, a
checksum that does not match) leaves the old one serving; the failure is kept for /readyz and
the metrics. A version that failed its checksums is not downloaded again; one that failed
otherwise (a store or a file not there yet) is tried again with backoff (`retry_delay`), so a
server that starts before its model can load waits for it instead of exiting or hammering.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from tasks.core import tags as tag
from tasks.core.config import Params
from tasks.core.errors import ModelIntegrityError
from tasks.registry import tracking
from tasks.registry.aliases import alias_version
from tasks.serving.champion import Champion, load_version

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadFailure:
    alias: str
    version: str
    error: str


def retry_delay(failures: int, first_s: float, most_s: float) -> float:
    """Seconds before a version that failed to load `failures` times in a row is tried again:
    `first_s`, doubling, at most `most_s` (a poll between two tries still waits its turn)."""
    return min(first_s * 2 ** (failures - 1), most_s)


@dataclass(frozen=True)
class Retry:
    failures: int
    not_before: float  # time.monotonic()


class ModelHolder:
    """`served` answers requests, `challenger` shadows or takes the canary share."""

    def __init__(self, params: Params, on_failure: Callable[[LoadFailure], None]):
        self.params = params
        self.alias = params.api.alias
        self.served: Champion | None = None
        self.challenger: Champion | None = None
        self.failure: LoadFailure | None = None
        self.on_failure = on_failure
        self._refused: set[str] = set()  # versions whose files failed their checksums
        self._retries: dict[str, Retry] = {}  # versions that failed otherwise, by version

    def _follows_challenger(self) -> bool:
        api = self.params.api
        return self.alias != tag.CHALLENGER and (api.shadow or api.canary_share > 0)

    async def refresh(self) -> None:
        """Read the aliases once and swap in any version that moved and loads."""
        self.served = await self._follow(self.alias, self.served)
        if self._follows_challenger():
            self.challenger = await self._follow(tag.CHALLENGER, self.challenger, keep=False)

    async def _follow(
        self, alias: str, current: Champion | None, keep: bool = True
    ) -> Champion | None:
        """The model `alias` names now: `current` when unchanged (or when the new one fails and
        `keep`), the newly loaded one otherwise; None when the alias is unset and not `keep`."""
        client = tracking.client(self.params.tracking)
        name = self.params.registry.model_name
        try:
            version = await asyncio.to_thread(alias_version, client, name, alias)
        except Exception as exc:  # a store that cannot answer: keep serving what is loaded
            log.warning("api: cannot read @%s (%s); keeping what is loaded", alias, exc)
            return current
        if version is None:
            return current if keep else None
        if current is not None and current.version == version:
            return current
        retry = self._retries.get(version)
        if version in self._refused or (retry and time.monotonic() < retry.not_before):
            return current if keep else None
        try:
            loaded = await asyncio.to_thread(load_version, self.params, version)
        except Exception as exc:  # any failure to load keeps the old version serving
            if isinstance(exc, ModelIntegrityError):
                self._refused.add(version)
            else:
                self._retries[version] = self._after(retry)
            self.failure = LoadFailure(alias, version, str(exc).splitlines()[0])
            self.on_failure(self.failure)
            log.error("api: @%s v%s failed to load, %s", alias, version, self.failure.error)
            return current if keep else None
        self._retries.pop(version, None)
        if alias == self.alias:
            self.failure = None
        log.info("api: @%s is now %s v%s (was %s)", alias, name, version, _shown(current))
        return loaded

    def _after(self, last: Retry | None) -> Retry:
        """The retry after one more failure in a row."""
        api = self.params.api
        failures = last.failures + 1 if last else 1
        delay = retry_delay(failures, api.load_retry_seconds, api.load_retry_max_seconds)
        return Retry(failures, time.monotonic() + delay)

    async def follow_forever(self, after: Callable[[], None]) -> None:
        """Poll every api.poll_seconds until cancelled; `after` runs after each poll."""
        while True:
            await asyncio.sleep(self.params.api.poll_seconds)
            await self.refresh()
            after()


def _shown(model: Champion | None) -> str:
    return f"v{model.version}" if model else "nothing"
