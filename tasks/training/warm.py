"""Warm starts: a retrain's network may begin at the champion's weights instead of at random.

Only when the featurizers are compatible: the same categorical and numeric columns, and a net
of the same shape (hidden layers, embedding sizes). Vocabularies may grow or shrink: a value
both know keeps its embedding row; a value new in the retrain gets a new row, started from the
champion's out-of-vocabulary row (what the champion scored it with); a value the retrain no
longer keeps goes to its out-of-vocabulary bucket. The numeric inputs are standardised with the
retrain's means and stds: the first layer is re-expressed for them, so the warm network starts
out computing the champion's function. Anything else starts from scratch, with the reason
logged and tagged on the run (`loopline.warm_start`).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from tasks.core import tags as tag
from tasks.core.config import FineTune, NetShape, Params, Schedule
from tasks.core.errors import ModelIntegrityError
from tasks.core.layout import WARM_STUDENT_ARTIFACT
from tasks.model.featurize import OOV, Featurizer
from tasks.model.nets import NetConfig, TabularNet, load_model
from tasks.registry import tracking
from tasks.registry.aliases import alias_version
from tasks.registry.versions import load_registered

log = logging.getLogger(__name__)

Role = Literal["teacher", "student"]


class Incompatible(Exception):
    """Why a network cannot start from the champion's weights (the message says it)."""


@dataclass(frozen=True)
class Start:
    """The network a training begins with, and where its weights came from."""

    model: TabularNet
    version: str | None  # the champion version it starts from; None: from scratch
    reason: str = ""  # why from scratch

    @property
    def tag(self) -> str:
        """The run's `loopline.warm_start` tag: "v3", or "scratch: " and why."""
        return f"v{self.version}" if self.version else f"scratch: {self.reason}"

    def schedule(self, schedule: Schedule, fine_tune: FineTune | None) -> Schedule:
        """`fine_tune`'s epochs, patience and scaled learning rate for a warm start."""
        if self.version is None or fine_tune is None:
            return schedule
        return schedule.model_copy(
            update={
                "max_epochs": fine_tune.max_epochs,
                "patience": fine_tune.patience,
                "learning_rate": schedule.learning_rate * fine_tune.lr_scale,
            }
        )


def scratch_net(featurizer: Featurizer, shape: NetShape) -> TabularNet:
    return TabularNet(
        NetConfig.for_featurizer(featurizer, shape.hidden, shape.max_embedding_dim, shape.dropout)
    )


def start(params: Params, role: Role, featurizer: Featurizer, shape: NetShape) -> Start:
    """The `role` network for `featurizer`: from the champion's when its section says
    `warm_start` and they are compatible, from scratch otherwise. Seed before calling."""
    section = "train" if role == "teacher" else "distill"
    if not getattr(params, section).warm_start:
        return Start(scratch_net(featurizer, shape), None, f"{section}.warm_start is false")
    try:
        # Loading draws no numbers from the seeded stream: a fallback is the very net
        # `warm_start: false` would train.
        with torch.random.fork_rng(devices=[]):
            version, champion, champion_featurizer = champion_network(params, role)
            model = transfer(champion, champion_featurizer, featurizer, shape)
    except Incompatible as exc:
        log.info("%s: from scratch: %s", role, exc)
        return Start(scratch_net(featurizer, shape), None, str(exc))
    log.info("%s: warm start from %s v%s", role, params.registry.model_name, version)
    return Start(model, version)


def champion_network(params: Params, role: Role) -> tuple[str, TabularNet, Featurizer]:
    """The champion's version and its teacher (registered) or fp32 student (an artifact of
    the run that registered it, whatever variant serves)."""
    name, client = params.registry.model_name, tracking.client(params.tracking)
    version = alias_version(client, name, tag.CHAMPION)
    if version is None:
        raise Incompatible(f"{name} has no champion yet")
    tags = client.get_model_version(name, version).tags
    try:
        if role == "teacher":
            return version, *_registered_teacher(params, version, tags)
        return version, *_run_student(params, version, tags)
    except ModelIntegrityError as exc:
        raise Incompatible(str(exc)) from None


def _named(tags: dict[str, str], key: str, version: str, what: str) -> str:
    value = tags.get(key)
    if not value:
        raise Incompatible(f"champion v{version} names no {what}")
    return value


def _registered_teacher(
    params: Params, version: str, tags: dict[str, str]
) -> tuple[TabularNet, Featurizer]:
    teacher_version = _named(tags, tag.TEACHER_VERSION, version, "teacher version")
    model, featurizer, _ = load_registered(
        params.tracking, params.registry.teacher_model_name, teacher_version
    )
    return model, featurizer


def _run_student(
    params: Params, version: str, tags: dict[str, str]
) -> tuple[TabularNet, Featurizer]:
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    run_id = _named(tags, tag.RUN_ID, version, "run")
    with tempfile.TemporaryDirectory(prefix="loopline-warm-") as tmp:
        try:
            folder = tracking.retrying(
                params.tracking,
                download_artifacts,
                run_id=run_id,
                artifact_path=WARM_STUDENT_ARTIFACT,
                dst_path=tmp,
            )
        except (MlflowException, OSError):
            raise Incompatible(
                f"champion v{version}'s run {run_id} kept no fp32 student "
                f"({WARM_STUDENT_ARTIFACT}): it was trained before warm starts"
            ) from None
        model, featurizer = load_model(Path(folder))
    return model, featurizer


def transfer(source: TabularNet, old: Featurizer, new: Featurizer, shape: NetShape) -> TabularNet:
    """A network for `new` holding `source`'s weights (trained on `old`'s encoding); raises
    Incompatible naming the difference when the two cannot be matched up."""
    _require_compatible(source, old, new, shape)
    config = NetConfig(
        new.cardinalities,
        list(source.config.embedding_dims),
        new.numeric_width,
        list(shape.hidden),
        shape.dropout,
    )
    model = TabularNet(config)
    with torch.no_grad():
        for col, src, dst in zip(new.categorical, source.embeddings, model.embeddings, strict=True):
            dst.weight.copy_(src.weight[_rows(old.vocabularies[col], new.vocabularies[col])])
        _first_layer(source, old, model, new)
        for src, dst in list(zip(source.mlp, model.mlp, strict=True))[1:]:
            if isinstance(dst, torch.nn.Linear):
                dst.load_state_dict(src.state_dict())
    return model


def _require_compatible(
    source: TabularNet, old: Featurizer, new: Featurizer, shape: NetShape
) -> None:
    if source.config.quantized:
        raise Incompatible("the champion's network is quantized")
    for kind in ("categorical", "numeric"):
        before, after = getattr(old, kind), getattr(new, kind)
        if before != after:
            raise Incompatible(f"{kind} features differ: champion {before}, retrain {after}")
    if source.config.hidden != list(shape.hidden):
        raise Incompatible(
            f"hidden layers differ: champion {source.config.hidden}, retrain {shape.hidden}"
        )
    expected = NetConfig.for_featurizer(old, shape.hidden, shape.max_embedding_dim, 0.0)
    if source.config.embedding_dims != expected.embedding_dims:
        raise Incompatible(
            f"embedding sizes differ: champion {source.config.embedding_dims}, "
            f"max_embedding_dim {shape.max_embedding_dim} gives {expected.embedding_dims}"
        )


def _rows(old: list[str], new: list[str]) -> list[int]:
    """For each row of the new embedding table, the old row it starts from: the same value's,
    or the out-of-vocabulary row (for the bucket itself and for values new in the retrain)."""
    index = {value: i + 1 for i, value in enumerate(old)}
    return [OOV, *(index.get(value, OOV) for value in new)]


def _first_layer(source: TabularNet, old: Featurizer, model: TabularNet, new: Featurizer) -> None:
    """The first Linear layer for the new inputs: embedding columns as they were, numeric
    columns re-expressed for the new standardisation (x_old = x_new·s_new/s_old +
    (m_new - m_old)/s_old, folded into weight and bias), missing indicators matched by column
    (one new in the retrain starts at zero weight)."""
    src, dst = source.mlp[0], model.mlp[0]
    width = sum(source.config.embedding_dims)
    dst.weight.zero_()
    dst.weight[:, :width] = src.weight[:, :width]
    dst.bias.copy_(src.bias)
    for j, col in enumerate(new.numeric):
        w = src.weight[:, width + old.numeric.index(col)]
        dst.weight[:, width + j] = w * (new.stds[col] / old.stds[col])
        dst.bias.add_(w * ((new.means[col] - old.means[col]) / old.stds[col]))
    for j, col in enumerate(new.missing_indicators):
        if col in old.missing_indicators:
            k = len(old.numeric) + old.missing_indicators.index(col)
            dst.weight[:, width + len(new.numeric) + j] = src.weight[:, width + k]
