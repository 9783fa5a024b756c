"""Every stage by name, taking the whole typed config: what `loopline stage NAME` (and so
dvc.yaml) and the Prefect tasks call. Imports are lazy so the CLI stays instant.

Each stage's work is measured into the cost ledger (`tasks.registry.ledger`) here, the one path both
runners share; the imports stay outside the measurement, as the flow pays them only once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tasks.core.config import Params, require_volume, with_volume
from tasks.registry.ledger import metered

log = logging.getLogger(__name__)


def ingest(params: Params) -> dict:
    from tasks.data.ingest import run_ingest

    with metered(params, "ingest"):
        summary = run_ingest(params.dataset, params.ingest, params.file)
    sized(params, summary)
    return summary


def sized(params: Params, summary: dict | None = None) -> Params:
    """`params` with its `auto` sizes resolved from the ingest summary and logged: a size the
    data cannot fill fails here, at ingest, with the key to set."""
    resolved = with_volume(params, summary)
    if resolved.resolved:
        log.info(
            "%s: auto sizes for %s: %s",
            params.file,
            params.dataset.name,
            ", ".join(f"{key} {value:,}" for key, value in resolved.resolved.items()),
        )
    return require_volume(resolved)


def measured(params: Params) -> Params:
    """`params` with the `auto` sizes the training stages read resolved, also when they were
    loaded before this process ingested (a flow, a test running the stages in turn)."""
    return require_volume(with_volume(params))


def validate(params: Params, input_path: Path | None = None) -> dict:
    from tasks.data.validate import run_validate

    # A file checked by hand (--input) is not part of a training: it stays out of the ledger.
    features_dir = params.ingest.features_dir
    with metered(params, "validate") if input_path is None else contextlib.nullcontext():
        return run_validate(params.dataset, params.validate_, features_dir, input_path)


def train(params: Params, until: dt.date | None = None, parent_run_id: str | None = None) -> dict:
    from tasks.training.teacher import run_train

    params = measured(params)
    with metered(params, "train"):
        return run_train(params, until=until, parent_run_id=parent_run_id)


def evaluate(params: Params) -> dict:
    from tasks.training.evaluate import run_evaluate

    params = measured(params)
    with metered(params, "evaluate"), _of_training(params):
        return run_evaluate(params)


def distill(params: Params) -> dict:
    from tasks.training.distill import run_distill

    params = measured(params)
    with metered(params, "distill"), _of_training(params):
        return run_distill(params)


def promote(params: Params) -> Any:
    from tasks.registry.promote import run_promote

    params = measured(params)
    with metered(params, "promote"), _of_training(params):
        decision = run_promote(params)
    _end_training(params, decision.decision)
    return decision


@contextlib.contextmanager
def _of_training(params: Params) -> Iterator[None]:
    """A stage after `train`: when it fails, the training's parent run (still RUNNING, as
    under `dvc repro`, where no flow is there to end it) ends FAILED, and the error goes on."""
    try:
        yield
    except BaseException:
        from tasks.registry import tracking

        with contextlib.suppress(Exception):  # no record, or the store down: the error wins
            parent = _running_parent(params)
            if parent:
                tracking.end_run(params.tracking, parent, "FAILED")
        raise


def _running_parent(params: Params) -> str | None:
    """The parent run of the training recorded beside the teacher, while it is RUNNING."""
    from tasks.data.split import TrainingRecord
    from tasks.registry import tracking

    parent = TrainingRecord.load(params.train.model_dir).parent_run_id
    running = parent and tracking.client(params.tracking).get_run(parent).info.status == "RUNNING"
    return parent if running else None


def _end_training(params: Params, verdict: str) -> None:
    """The gate is the training's last step: its parent run ends here, with the verdict, so
    its duration spans every stage (under `dvc repro` the stages are separate processes)."""
    from tasks.core import tags as tag
    from tasks.data.split import TrainingRecord
    from tasks.registry import tracking

    parent = TrainingRecord.load(params.train.model_dir).parent_run_id
    if parent:
        client = tracking.client(params.tracking)
        client.set_tag(parent, tag.PROMOTION, verdict)
        if client.get_run(parent).info.status == "RUNNING":  # a later re-gate keeps its end
            tracking.end_run(params.tracking, parent)


STAGES: dict[str, Callable[[Params], Any]] = {
    "ingest": ingest,
    "validate": validate,
    "train": train,
    "evaluate": evaluate,
    "distill": distill,
    "promote": promote,
}
