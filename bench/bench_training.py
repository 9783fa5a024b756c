"""The training stages on the default data: wall time of each, and the model targets.

Runs train → evaluate → distill as `dvc repro` does (plain stage functions, same process) and
reads back the metrics they wrote, so the figures are those of one real run.
"""

from __future__ import annotations

import json
import time

from bench.common import Row
from tasks import stages
from tasks.config import Params


def _metrics(params: Params, name: str) -> dict:
    return json.loads((params.evaluate.metrics_dir / f"{name}.json").read_text())


def run(params: Params) -> list[Row]:
    rows = []
    for name in ("train", "evaluate", "distill"):
        started = time.perf_counter()
        stages.STAGES[name](params)
        rows.append(Row("training", f"stage {name}", time.perf_counter() - started, "s"))
    teacher, baseline = _metrics(params, "teacher"), _metrics(params, "baseline")
    student, int8 = _metrics(params, "student"), _metrics(params, "student_int8")
    pruned = _metrics(params, "student_pruned")
    candidate = _metrics(params, "candidate")
    record = json.loads((params.train.model_dir / "training.json").read_text())
    rows += [
        Row(
            "training",
            "teacher samples/s",
            record["train_samples_per_s"],
            "rows/s",
            f"{params.train.threads} threads, batch {params.train.schedule.batch_size}",
        ),
        Row(
            "training",
            "student samples/s",
            student["train_samples_per_s"],
            "rows/s",
            f"{params.train.threads} threads, batch {params.distill.schedule.batch_size}",
        ),
        Row(
            "models",
            "AUC teacher / baseline / student / int8",
            teacher["roc_auc"],
            "AUC",
            f"{baseline['roc_auc']:.4f} / {student['roc_auc']:.4f} / {int8['roc_auc']:.4f}",
        ),
        Row(
            "models",
            "teacher AUC - baseline AUC",
            teacher["roc_auc"] - baseline["roc_auc"],
            "AUC",
            "target: >= -0.01",
        ),
        Row(
            "models",
            "student AUC - teacher AUC",
            student["roc_auc"] - teacher["roc_auc"],
            "AUC",
            "target: >= -0.005",
        ),
        Row(
            "models",
            "student / teacher model rows/s",
            student["model_speedup_vs_teacher"],
            "x",
            f"target >= 5 (end to end with featurizing: {student['speedup_vs_teacher']:.2f}x)",
        ),
        Row(
            "models",
            "student / teacher parameters",
            student["parameter_share_of_teacher"],
            "share",
            "target: <= 0.1",
        ),
        Row(
            "models",
            "int8 / fp32 student model rows/s",
            int8["model_rows_per_s"] / student["model_rows_per_s"],
            "x",
            "target: > 1",
        ),
        Row(
            "models",
            "int8 AUC - fp32 student AUC",
            int8["roc_auc"] - student["roc_auc"],
            "AUC",
            "target: >= -0.002",
        ),
        Row(
            "models",
            "pruned AUC - student AUC",
            pruned["roc_auc"] - student["roc_auc"],
            "AUC",
            f"{params.distill.prune.sparsity:.0%} of hidden units cut, "
            f"{pruned['parameters']:,} vs {student['parameters']:,} parameters",
        ),
        Row(
            "models",
            "teacher / student CPU-s per 1M predictions",
            teacher["cpu_s_per_million"] / student["cpu_s_per_million"],
            "x",
            f"selected: {candidate['variant']}",
        ),
    ]
    return rows
