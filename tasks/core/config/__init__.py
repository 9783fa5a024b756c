"""The one typed config: params.yaml read once into frozen pydantic models that reject unknown keys.

Every tunable lives in params.yaml; these models carry no defaults of their own that could
disagree with it. `load_params` turns every way a params file can be wrong into one
`ConfigError` line naming the file, the key and what is allowed. The sections live by concern
(`data`, `training`, `operations`); everything is importable from here.
"""

from __future__ import annotations

import json
import logging
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from tasks.core.config.base import (
    Fraction,
    StrictModel,
)
from tasks.core.config.data import (
    COMPARISONS,
    ColumnRule,
    DatasetConfig,
    DateWindow,
    FeatureSet,
    IngestConfig,
    SourceConfig,
    TargetRule,
    ValidateConfig,
)
from tasks.core.config.operations import (
    SCHEDULER_ADDRESS,
    ApiConfig,
    CostConfig,
    DaskConfig,
    DriftConfig,
    ProductionVolume,
    ReplayConfig,
    RetrainConfig,
    ScheduleConfig,
    ScoreConfig,
)
from tasks.core.config.training import (
    VARIANTS,
    BaselineConfig,
    DistillConfig,
    EvaluateConfig,
    FineTune,
    NetShape,
    PromoteConfig,
    PruneConfig,
    RegistryConfig,
    Schedule,
    SelectConfig,
    TrackingConfig,
    TrainConfig,
    Variant,
)
from tasks.core.config.volume import AUTO, AUTO_KEYS, Volume, get, put, resolve
from tasks.core.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = [
    "COMPARISONS",
    "PARAMS_FILE",
    "SCHEDULER_ADDRESS",
    "VARIANTS",
    "ApiConfig",
    "BaselineConfig",
    "ColumnRule",
    "CostConfig",
    "DaskConfig",
    "DatasetConfig",
    "DateWindow",
    "DistillConfig",
    "DriftConfig",
    "EvaluateConfig",
    "FeatureSet",
    "FineTune",
    "Fraction",
    "IngestConfig",
    "NetShape",
    "Params",
    "ProductionVolume",
    "PromoteConfig",
    "PruneConfig",
    "RegistryConfig",
    "ReplayConfig",
    "RetrainConfig",
    "Schedule",
    "ScheduleConfig",
    "ScoreConfig",
    "SelectConfig",
    "SourceConfig",
    "StrictModel",
    "TargetRule",
    "TrackingConfig",
    "TrainConfig",
    "ValidateConfig",
    "Variant",
    "load_params",
    "override",
    "require_volume",
    "with_volume",
]


# The params file a command reads unless told otherwise (`--params`).
PARAMS_FILE = Path("params.yaml")


class Params(StrictModel):
    """The whole of params.yaml."""

    dataset: DatasetConfig
    ingest: IngestConfig
    validate_: ValidateConfig = Field(alias="validate")
    train: TrainConfig
    evaluate: EvaluateConfig
    baseline: BaselineConfig
    distill: DistillConfig
    promote: PromoteConfig
    score: ScoreConfig
    drift: DriftConfig
    retrain: RetrainConfig
    replay: ReplayConfig
    cost: CostConfig
    schedule: ScheduleConfig
    registry: RegistryConfig
    tracking: TrackingConfig
    api: ApiConfig

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    # The file these params were read from: messages and pages name it, not "params.yaml".
    _file: Path = PrivateAttr(default=PARAMS_FILE)
    # The keys that said `auto` in the file, with what they were resolved to.
    _resolved: dict[str, int] = PrivateAttr(default_factory=dict)
    # Why the measured volume cannot fill a size, kept for `require_volume` (a stale summary
    # must not stop `loopline ingest`, which measures the volume again).
    _volume_error: str | None = PrivateAttr(default=None)

    @property
    def file(self) -> Path:
        """The params file these were read from (`--params`)."""
        return self._file

    @property
    def resolved(self) -> dict[str, int]:
        """`{"train.test_days": 14, ...}`: each `auto` key and the number it stands for."""
        return dict(self._resolved)

    def as_written(self) -> dict[str, Any]:
        """The params as a plain dict with the `auto` keys as written (a template: `init`)."""
        raw = self.model_dump(mode="json", by_alias=True)
        for key in self._resolved:
            put(raw, key, AUTO)
        return raw

    def unresolved(self) -> list[str]:
        """Keys still saying `auto`: their size needs the volume ingest measures."""
        raw = self.model_dump(mode="json", by_alias=True)
        return [key for key in AUTO_KEYS if get(raw, key) == AUTO]

    @model_validator(mode="after")
    def _rules_match_features(self) -> Params:
        features = self.dataset.features
        unknown = set(self.validate_.rules) - set(features.names)
        if unknown:
            raise ValueError(
                f"validate.rules names columns that are not features: {sorted(unknown)}"
            )
        if self.distill.candidate == "teacher" and not self.promote.allow_teacher:
            raise ValueError("distill.candidate: 'teacher' needs promote.allow_teacher: true")
        for name, rule in self.validate_.rules.items():
            if name in features.categorical and (rule.min is not None or rule.max is not None):
                raise ValueError(
                    f"validate.rules.{name}: a categorical feature takes `values`, not min/max"
                )
            if name in features.numeric and rule.values is not None:
                raise ValueError(
                    f"validate.rules.{name}: a numeric feature takes min/max, not `values`"
                )
        return self


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    """Read and check params.yaml; every failure is one ConfigError line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: params file not found; create it (see docs/reference.md) "
            "or pass --params PATH"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read params file: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}: {line}{problem}; fix the YAML syntax") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    try:
        params = Params.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: " + "; ".join(_describe(e) for e in exc.errors())) from None
    params._file = path
    try:
        return with_volume(params)
    except ConfigError as exc:  # the commands that need the sizes fail on it (require_volume)
        unmeasured = with_volume(params, {})  # no figures: only the sizes that need none
        unmeasured._volume_error = str(exc)
        return unmeasured


def with_volume(params: Params, summary: dict | None = None) -> Params:
    """`params` with each `auto` key resolved from the volume ingest measured (`summary`, else
    the file at ingest.summary_path, when it is this data set's), and every size checked
    against it: a size the data cannot fill is one ConfigError line naming the key to set.
    Without a summary the keys that need the volume stay `auto` (`require_volume`)."""
    if summary is None:
        summary = _read_summary(params.ingest.summary_path)
    if summary is not None and summary.get("dataset") != params.dataset.name:
        summary = None  # another data set's figures say nothing about this one
    raw = params.as_written()
    volume = Volume.from_summary(summary) if summary else None
    try:
        values = resolve(raw, volume, (params.dataset.name, params.dataset.plural_noun))
    except ConfigError as exc:
        raise ConfigError(f"{params.file}: {exc}") from None
    for key, value in values.items():
        put(raw, key, value)
    resolved = Params.model_validate(raw)
    resolved._file = params.file
    resolved._resolved = values
    if values:
        log.debug("%s: auto sizes %s", params.file, values)
    return resolved


def require_volume(params: Params) -> Params:
    """`params` when every `auto` key has its number; else one ConfigError line saying to
    run ingest, which measures the volume they are sized from; or the line saying which size
    the measured volume cannot fill."""
    if params._volume_error:
        raise ConfigError(params._volume_error)
    missing = params.unresolved()
    if missing:
        raise ConfigError(
            f"{params.file}: {', '.join(missing)}: auto, sized from the volume ingest measures "
            f"into {params.ingest.summary_path}, which has no figures for "
            f"{params.dataset.name}; run `loopline --params {params.file} ingest` first "
            "(or set them to numbers)"
        )
    return params


def _read_summary(path: Path) -> dict | None:
    try:
        summary = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) else None


def override(params: Params, origin: str, section: str, **values: Any) -> Params:
    """`params` with keys of one section replaced (a command-line option), checked exactly as
    params.yaml is: a bad value is one ConfigError line naming `origin` and the key."""
    raw = params.model_dump(mode="json", by_alias=True)
    raw[section] = {**raw[section], **values}
    try:
        changed = Params.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{origin}: " + "; ".join(_describe(e) for e in exc.errors())) from None
    changed._file = params.file
    given = {f"{section}.{name}" for name in values}  # a number given now is no longer auto
    changed._resolved = {k: v for k, v in params.resolved.items() if k not in given}
    return changed


def _describe(error: Any) -> str:
    """One readable clause for one pydantic error: key path, what is wrong, what is allowed."""
    loc = [str(part) for part in error["loc"]]
    key = ".".join(loc) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(Params, loc[:-1])
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"{key}: unknown key{hint}"
    if kind == "missing":
        return f"{key}: required key is missing"
    given = error.get("input")
    shown = f" (got {given!r})" if not isinstance(given, dict | list) else ""
    return f"{key}: {error['msg']}{shown}"


def _allowed_keys(model: type[BaseModel], loc: list[str]) -> list[str]:
    """The keys a model accepts at `loc`, following nested models and dict values."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next(
                (f for name, f in current.model_fields.items() if part in (name, f.alias)),
                None,
            )
            if field is None:
                return []
            current = field.annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip Optional[...] so nested models can be found behind `X | None`."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, type(int | None)) and len(args) == 1:
        return args[0]
    return annotation
