"""Training throughput and the distilled models: read back from the direct run of the
orchestration benchmark (same process, same scratch project), so the figures are those of one
real run of the stages `dvc repro` runs.
"""

from __future__ import annotations

import json
import statistics

from bench.common import Row, at_least, at_most
from bench.project import Scratch
from tasks.core.config import Params


def _metrics(params: Params, name: str) -> dict:
    return json.loads((params.evaluate.metrics_dir / f"{name}.json").read_text())


def run(scratch: Scratch) -> list[Row]:
    params = scratch.params
    teacher, baseline = _metrics(params, "teacher"), _metrics(params, "baseline")
    student, int8 = _metrics(params, "student"), _metrics(params, "student_int8")
    pruned = _metrics(params, "student_pruned")
    candidate = _metrics(params, "candidate")
    record = json.loads((params.train.model_dir / "training.json").read_text())
    epochs = [epoch["samples_per_s"] for epoch in record["history"]]
    return [
        Row(
            "training",
            "teacher samples/s per epoch (median)",
            statistics.median(epochs),
            "rows/s",
            f"{len(epochs)} epochs, {min(epochs):,.0f}..{max(epochs):,.0f}; "
            f"{record['threads']} threads, batch {params.train.schedule.batch_size}",
        ),
        Row(
            "training",
            "student samples/s (all epochs)",
            student["train_samples_per_s"],
            "rows/s",
            f"{record['threads']} threads, batch {params.distill.schedule.batch_size}; "
            "the teacher's logits are computed once, up front",
        ),
        Row(
            "models",
            "AUC teacher / baseline / student / int8",
            teacher["roc_auc"],
            "AUC",
            f"{baseline['roc_auc']:.4f} / {student['roc_auc']:.4f} / {int8['roc_auc']:.4f}",
        ),
        at_least(
            "models",
            "teacher AUC - baseline AUC",
            teacher["roc_auc"] - baseline["roc_auc"],
            "AUC",
            -0.01,
            "",
        ),
        at_least(
            "models",
            "student AUC - teacher AUC",
            student["roc_auc"] - teacher["roc_auc"],
            "AUC",
            -0.005,
            "",
        ),
        at_least(
            "models",
            "student / teacher model rows/s",
            student["model_speedup_vs_teacher"],
            "x",
            5,
            f"(end to end with featurizing: {student['speedup_vs_teacher']:.2f}x)",
        ),
        at_most(
            "models",
            "student / teacher parameters",
            student["parameter_share_of_teacher"],
            "share",
            0.1,
            "",
        ),
        at_least(
            "models",
            "int8 / fp32 student model rows/s",
            int8["model_rows_per_s"] / student["model_rows_per_s"],
            "x",
            1,
            "",
        ),
        at_least(
            "models",
            "int8 AUC - fp32 student AUC",
            int8["roc_auc"] - student["roc_auc"],
            "AUC",
            -0.002,
            "",
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
