"""The model card logged with each distillation run: what the model is, in Markdown."""

from __future__ import annotations

from tasks.core.config import Params
from tasks.data.split import TrainingRecord
from tasks.training.evaluate import HEADLINE_METRICS, Evaluation
from tasks.training.selection import Selection


def model_card(
    params: Params,
    record: TrainingRecord,
    teacher: Evaluation,
    evaluations: dict[str, Evaluation],
    selection: Selection,
) -> str:
    """The student run's README in MLflow: what it predicts, from which days, how it scored."""
    rows = [teacher, *evaluations.values()]
    keys = (*HEADLINE_METRICS, "cost_per_million")
    table = ["| model | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for ev in rows:
        cells = [
            f"{ev.metrics[k]:,.4g}" if isinstance(ev.metrics[k], float) else f"{ev.metrics[k]:,}"
            for k in keys
        ]
        table.append(f"| {ev.name} | " + " | ".join(cells) + " |")
    w = record.windows
    return (
        "\n".join(
            [
                f"# {params.registry.model_name}: distilled student of {params.dataset.name}",
                "",
                f"Predicts `{params.dataset.target.name}` = `{params.dataset.target.column} "
                f"{params.dataset.target.op} {params.dataset.target.value}` from "
                f"{len(params.dataset.features.names)} features known before the event.",
                "",
                f"- train {w.train.start}..{w.train.end}, "
                f"validation {w.validation.start}..{w.validation.end}, "
                f"test {w.test.start}..{w.test.end}",
                f"- data fingerprint `{record.data_fingerprint}`, "
                f"teacher run `{record.teacher_run_id}`",
                f"- distillation: temperature {params.distill.temperature}, "
                f"alpha {params.distill.alpha}",
                "",
                "## Test metrics",
                "",
                *table,
                "",
                "Latency is per batch of "
                f"{params.evaluate.latency_batch_size} raw rows, featurization included, on "
                f"{params.train.threads} CPU threads. Cost per 1M predictions: the CPU seconds "
                f"of one scoring pass of the test days at {params.cost.cpu_hour} "
                f"{params.cost.currency} per CPU-hour.",
                "",
                f"Registered: {selection.reason}.",
            ]
        )
        + "\n"
    )
