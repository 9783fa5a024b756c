"""Where everything lives: every path and file name the stages hand to one another.

Folders come from params; the names inside them are fixed here, once, so a stage that writes
a file and the stage (or page) that reads it cannot disagree.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tasks.core.config import Params
from tasks.core.dates import DATE_PATTERN

# A saved network's folder: its shape, its weights, the featurizer fitted with it.
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
FEATURIZER_FILE = "featurizer.json"
# Beside the teacher: what it was trained on (window, split, fingerprint, run ids).
TRAINING_RECORD = "training.json"
# The training loop's resumable state, in the model's folder while it trains.
CHECKPOINT = "checkpoint.pt"

# Stage metrics under evaluate.metrics_dir: one file per model or variant, plus these two.
CANDIDATE = "candidate"  # the variant distillation put forward to the gate
FRONTIER = "frontier"  # one row per variant: cost per 1M vs ROC AUC (a DVC plot)
# The validation gate's report of the feature table, under validate.report_dir.
FEATURE_TABLE_REPORT = "features"

# Beside the drift reports, in drift.report_dir: Evidently's JavaScript library and icon font,
# written once and loaded by every report from disk.
DRIFT_REPORT_ASSETS = "js"

# The drift reference sample, an artifact of the run that registered the model.
REFERENCE_ARTIFACT = "reference/reference.parquet"
# The fp32 student (before pruning and int8), an artifact of its run whatever variant was
# registered: what a later student warm-starts from (`distill.warm_start`).
WARM_STUDENT_ARTIFACT = "warm_start/student"


# Beside each stage's metrics record, in `numbers/`: its numbers alone, the file DVC reads as
# metrics (and git keeps, so `dvc metrics diff` compares commits).
NUMBERS_DIR = "numbers"


def numbers_file(record: Path) -> Path:
    """The numbers-only twin of a metrics record: `reports/metrics/numbers/teacher.json`."""
    return Path(record).parent / NUMBERS_DIR / Path(record).name


def metrics_file(metrics_dir: Path, name: str) -> Path:
    """A model's (or variant's) evaluation metrics, in `evaluate.metrics_dir`."""
    return Path(metrics_dir) / f"{name}.json"


def validation_report(report_dir: Path, name: str, suffix: str = ".json") -> Path:
    """The validation gate's report of table `name` (.json or .html), in `validate.report_dir`."""
    return Path(report_dir) / f"{name}{suffix}"


def training_record(model_dir: Path) -> Path:
    """The teacher's training record, beside it in `train.model_dir`."""
    return Path(model_dir) / TRAINING_RECORD


def drift_report(report_dir: Path, day: dt.date, suffix: str) -> Path:
    """The drift check of `day` (.json or .html), in `drift.report_dir`."""
    return Path(report_dir) / f"{day.isoformat()}{suffix}"


# Where a training writes, by params section: re-rooted for a loop's retrain (`training_places`).
TRAINING_OUTPUTS = {
    "train": ("model_dir", "checkpoint_dir"),
    "evaluate": ("metrics_dir", "plots_dir"),
    "baseline": ("scores_path",),
    "distill": ("model_dir", "int8_dir", "pruned_dir", "pruned_int8_dir", "checkpoint_dir"),
    "promote": ("decision_path",),
    "cost": ("ledger_path",),
}


def run_root(params: Params, until: dt.date) -> Path:
    """The folder of the loop's retrain on the window ending `until`."""
    return params.retrain.runs_dir / f"until-{until.isoformat()}"


def training_places(params: Params, until: dt.date) -> Params:
    """`params` with every output of a training moved under `run_root` (same relative paths
    inside it): a loop's retrain leaves the pipeline's outputs, which DVC tracks, to `dvc
    repro`, so `dvc status` stays clean and DVC keeps describing the pipeline's model."""
    root = run_root(params, until)
    raw = params.model_dump(mode="json", by_alias=True)
    for section, keys in TRAINING_OUTPUTS.items():
        raw[section] |= {key: str(root / Path(raw[section][key])) for key in keys}
    moved = Params.model_validate(raw)
    moved._file = params.file
    return moved


def latest_training(params: Params) -> Params:
    """The places of the newest training: the latest retrain's run folder when the loop has
    retrained, else the pipeline's."""
    runs = sorted(Path(params.retrain.runs_dir).glob("until-*"))
    done = [r for r in runs if training_record(r / params.train.model_dir).exists()]
    if not done:
        return params
    return training_places(params, dt.date.fromisoformat(done[-1].name.removeprefix("until-")))


def replay_summary_path(params: Params) -> Path:
    return params.drift.report_dir.parent / "replay" / "summary.json"


def day_file(folder: Path, day: dt.date) -> Path:
    """A batch day's file in one of the nightly folders: `YYYY-MM-DD.parquet`."""
    return Path(folder) / f"{day.isoformat()}.parquet"


def dated_files(folder: Path) -> dict[dt.date, Path]:
    """Every batch day's file in one of the nightly folders, by day (other names are ignored)."""
    folder = Path(folder)
    paths = folder.glob("*.parquet") if folder.is_dir() else []
    found = {dt.date.fromisoformat(p.stem): p for p in paths if DATE_PATTERN.fullmatch(p.stem)}
    return dict(sorted(found.items()))


def day_lock(params: Params, day: dt.date) -> Path:
    """The lock a run of batch day `day` holds, in `score.lock_dir`, apart from the outputs."""
    return params.score.lock_dir / f"score-{day.isoformat()}.lock"


def day_paths(params: Params, day: dt.date) -> dict[str, Path]:
    """One batch day's files: its incoming rows, labels, predictions, quarantine and shadow."""
    cfg = params.score
    return {
        "incoming": day_file(cfg.incoming_dir, day),
        "labels": day_file(cfg.labels_dir, day),
        "predictions": day_file(cfg.predictions_dir, day),
        "quarantine": day_file(cfg.quarantine_dir, day),
        "shadow": day_file(cfg.shadow_dir, day),
    }


# Online traffic (`loopline api`) beside the nightly files: `FOLDER/online/D/part-*.parquet`,
# one new part per flush, so a running server never rewrites a file a reader may hold.
ONLINE = "online"


def online_day_dir(folder: Path, day: dt.date) -> Path:
    """The folder of a day's online part files under one of the nightly folders."""
    return Path(folder) / ONLINE / day.isoformat()


def online_parts(folder: Path, day: dt.date) -> list[Path]:
    """A day's online part files, oldest first (their names start with the flush time)."""
    return sorted(online_day_dir(folder, day).glob("part-*.parquet"))


def online_days(folder: Path) -> list[dt.date]:
    """Every day with online part files under one of the nightly folders."""
    root = Path(folder) / ONLINE
    days = root.iterdir() if root.is_dir() else []
    return sorted(
        dt.date.fromisoformat(d.name)
        for d in days
        if DATE_PATTERN.fullmatch(d.name) and any(d.glob("part-*.parquet"))
    )
