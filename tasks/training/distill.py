"""Stage `distill`: a small student learns the teacher's soft targets plus the hard labels.

The student reuses the teacher's featurizer (same inputs, same vocabularies) and comes in four
variants: fp32, int8 (dynamic quantization), pruned (hidden units cut by weight magnitude, then
fine-tuned) and pruned int8. Each is evaluated on the same test days as the teacher, with its
cost per 1M predictions measured. `promote.select` picks the one registered as the candidate
version of `registry.model_name` (the teacher only where `promote.allow_teacher`), with tags
that link it to the teacher version, the runs and the data; `frontier.json` keeps the AUC-cost
trade-off the choice was made on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from tasks.core import tags as tag
from tasks.core.config import DistillConfig, Params
from tasks.core.io import write_json
from tasks.core.io import write_metrics as write_metric_files
from tasks.core.layout import CANDIDATE, FRONTIER, WARM_STUDENT_ARTIFACT, metrics_file
from tasks.core.metrics import agreement, classification_metrics
from tasks.data.split import Split, TrainingRecord, freshest_labelled, load_split, recency_weights
from tasks.model.featurize import Featurizer
from tasks.model.nets import TabularNet, load_model, quantize_int8, save_model
from tasks.model.predict import predict_logits, predict_proba
from tasks.registry import tracking
from tasks.registry.reference import log_reference
from tasks.registry.versions import describe_version, log_and_register
from tasks.training import warm
from tasks.training.calibrate import Calibration, fit_calibration, fold_into_output
from tasks.training.compression import prune_student
from tasks.training.ensemble import teacher_targets
from tasks.training.evaluate import (
    Evaluation,
    cost_per_million,
    evaluate_network,
    write_metrics,
    write_plots,
)
from tasks.training.loop import distillation_loss, fit, run_key, seed_everything
from tasks.training.model_card import model_card
from tasks.training.selection import frontier_rows, select_variant
from tasks.training.teacher import encode, training_datasets

log = logging.getLogger(__name__)

# Each student variant's metrics in the student's MLflow run, by prefix.
METRIC_PREFIXES = {
    "student": "test_",
    "student_int8": "test_int8_",
    "student_pruned": "test_pruned_",
    "student_pruned_int8": "test_pruned_int8_",
}


def variant_folders(params: Params) -> dict[str, Path]:
    """Where each variant is saved, i.e. what registering it ships."""
    cfg = params.distill
    return {
        "teacher": params.train.model_dir,
        "student": cfg.model_dir,
        "student_int8": cfg.int8_dir,
        "student_pruned": cfg.pruned_dir,
        "student_pruned_int8": cfg.pruned_int8_dir,
    }


def run_distill(params: Params) -> dict[str, dict]:

    cfg, target = params.distill, params.dataset.target.name
    record = TrainingRecord.load(params.train.model_dir)
    split = load_split(params, record.window, record.windows)
    teacher, featurizer = load_model(params.train.model_dir)

    targets = teacher_targets(params, split, teacher, featurizer)
    train_data = encode(
        featurizer,
        split.train,
        target,
        targets.train_logits,
        recency_weights(split.train, record.window.end, params.train.half_life_days),
    )
    val_data = encode(featurizer, split.validation, target)
    seed_everything(params.train.seed, params.train.threads)
    begin = warm.start(params, "student", featurizer, cfg.net)
    key = run_key(
        cfg.model_dump_json(),
        featurizer.to_json(),
        record.data_fingerprint,
        record.teacher_run_id,
        targets.network_weight,
        params.train.half_life_days,
        begin.tag,
    )

    tracking.configure(params.tracking)
    tags = tracking.lineage_tags(params, record.data_fingerprint, record.parent_run_id)
    teacher_version = _teacher_version(params)
    link = {
        tag.TEACHER_MODEL: params.registry.teacher_model_name,
        tag.TEACHER_VERSION: str(teacher_version),
        tag.TEACHER_RUN_ID: record.teacher_run_id or "",
        tag.PARENT_RUN_ID: record.parent_run_id or "",
        tag.WINDOW: record.window.tag,
    }

    run_tags = {**tags, **link, tag.VARIANT: "student", tag.WARM_START: begin.tag}
    with tracking.child_run(record.parent_run_id, "student", run_tags) as student_run:
        import mlflow

        mlflow.log_params(
            {
                "temperature": cfg.temperature,
                "alpha": cfg.alpha,
                "teacher": cfg.teacher,
                "teacher_network_weight": targets.network_weight,
                "hidden": str(cfg.net.hidden),
                "schedule": cfg.schedule.model_dump_json(),
                "prune_sparsity": cfg.prune.sparsity,
                "prune_finetune_epochs": cfg.prune.finetune_epochs,
            }
        )
        # This run registers the candidate: the version's source run names its data.
        for dataset, context in training_datasets(params, split):
            mlflow.log_input(dataset, context=context)
        result = fit(
            begin.model,
            train_data,
            val_data,
            begin.schedule(cfg.schedule, cfg.fine_tune),
            seed=params.train.seed,
            checkpoint_dir=cfg.checkpoint_dir,
            key=key,
            loss_fn=distillation_loss(cfg.temperature, cfg.alpha),
            name="student",
            on_epoch=lambda r: mlflow.log_metrics(
                {"train_loss": r["train_loss"], "val_log_loss": r["val_log_loss"]}, step=r["epoch"]
            ),
        )
        pruned = prune_student(
            result.model, train_data, val_data, cfg, seed=params.train.seed, key=key
        )
        folders = variant_folders(params)
        for name, model in (("student", result.model), ("student_pruned", pruned)):
            calibration = _calibrate(model, featurizer, split, target, cfg)
            mlflow.log_params(
                {f"{name}_calibration_{k}": v for k, v in dataclasses.asdict(calibration).items()}
            )
            save_model(model, featurizer, folders[name])
            save_model(quantize_int8(model), featurizer, folders[f"{name}_int8"])
        # Whatever variant is registered, the next student may start from this one.
        mlflow.log_artifacts(str(folders["student"]), artifact_path=WARM_STUDENT_ARTIFACT)

        teacher_eval = evaluate_network(
            "teacher", folders["teacher"], split, target, params.evaluate
        )
        evaluations = {
            name: evaluate_network(name, folders[name], split, target, params.evaluate)
            for name in METRIC_PREFIXES
        }
        for ev in [teacher_eval, *evaluations.values()]:
            ev.metrics["cost_per_million"] = cost_per_million(ev.metrics, params.cost)
        y_test = split.test[target].to_numpy()
        source_auc = classification_metrics(
            y_test, targets.test_scores, 0.5, params.evaluate.calibration_bins
        )["roc_auc"]
        baseline_auc = _stage_metrics(params, "baseline")["roc_auc"]
        for ev in evaluations.values():
            ev.metrics.update(_versus_teacher(ev, teacher_eval, source_auc))
            ev.metrics["baseline_roc_auc"] = baseline_auc
        student_eval = evaluations["student"]
        student_eval.metrics.update(
            {
                "train_seconds": result.seconds,
                "train_samples_per_s": result.samples_per_s,
                "best_epoch": result.best_epoch,
            }
        )
        for name, ev in evaluations.items():
            tracking.log_metrics(ev.metrics, prefix=METRIC_PREFIXES[name])

        students = {name: ev.metrics for name, ev in evaluations.items()}
        networks = {"teacher": teacher_eval.metrics, **students}
        select = params.promote.select
        selection = select_variant(
            networks,
            select.policy,
            select.auc_tolerance,
            fixed=cfg.candidate,
            allow_teacher=params.promote.allow_teacher,
            currency=params.cost.currency,
            cost_tie_ratio=select.cost_tie_ratio,
        )
        frontier = frontier_rows(
            {"teacher": teacher_eval.metrics, "baseline": _baseline_metrics(params), **students},
            selection.variant,
        )
        pngs = write_plots(params, split, [teacher_eval, *evaluations.values()], "distill")
        pngs.append(_frontier_png(params, frontier))
        for png in pngs:
            mlflow.log_artifact(str(png), artifact_path="plots")
        mlflow.log_text(
            model_card(params, record, teacher_eval, evaluations, selection), "model_card.md"
        )
        mlflow.log_dict(dataclasses.asdict(selection), "selection.json")

        candidate = networks[selection.variant]
        folder = folders[selection.variant]
        version = log_and_register(
            folder,
            params.registry.model_name,
            split.test.head(5),
            {
                **tags,
                **link,
                tag.VARIANT: selection.variant,
                tag.SELECTION: selection.reason,
                tag.RUN_ID: student_run.info.run_id,
                tag.TEST_ROC_AUC: f"{candidate['roc_auc']:.6f}",
                tag.THRESHOLD: f"{candidate['threshold']:.6f}",
                tag.COST_PER_MILLION: f"{candidate['cost_per_million']:.6g}",
                tag.LATENCY_MS_P95: f"{candidate['latency_ms_p95']:.6g}",
            },
            params.tracking,
        )
        served, _ = load_model(folder)
        # Out of sample: the test days' scores, which drift can compare later scores with
        # (in-sample training scores always look different).
        log_reference(params, split.test, predict_proba(served, featurizer, split.test))
    describe_version(
        params,
        params.registry.model_name,
        version,
        f"{selection.variant}, distilled from {params.registry.teacher_model_name} "
        f"v{teacher_version} on {params.dataset.name}",
        record,
        selection.reason,
    )
    _link_parent(params, record, version, teacher_version, selection.variant)

    for ev in evaluations.values():
        write_metrics(params.evaluate, ev)
    write_json(metrics_file(params.evaluate.metrics_dir, FRONTIER), frontier)
    # What the promotion gate judges: the registered version and its own test metrics.
    write_metric_files(
        metrics_file(params.evaluate.metrics_dir, CANDIDATE),
        {
            **candidate,
            "variant": selection.variant,
            "selection": selection.reason,
            "registry_version": int(version),
            "model_name": params.registry.model_name,
        },
    )
    log.info(
        "distill: student AUC %.4f (teacher %.4f, distilled from %.4f; baseline %.4f), "
        "%.1fx teacher rows/s, %d vs %d params; "
        "int8 AUC %.4f, pruned AUC %.4f; registered %s v%s: %s",
        student_eval.metrics["roc_auc"],
        teacher_eval.metrics["roc_auc"],
        source_auc,
        baseline_auc,
        student_eval.metrics["speedup_vs_teacher"],
        student_eval.metrics["parameters"],
        teacher_eval.metrics["parameters"],
        evaluations["student_int8"].metrics["roc_auc"],
        evaluations["student_pruned"].metrics["roc_auc"],
        params.registry.model_name,
        version,
        selection.reason,
    )
    return students


def _calibrate(
    model: TabularNet, featurizer: Featurizer, split: Split, target: str, cfg: DistillConfig
) -> Calibration:
    """Fit the calibration on the validation days, its level on the freshest
    `calibration_level_days`, and fold it into `model`."""
    days = split.validation
    level = freshest_labelled(split, cfg.calibration_level_days)  # ends with the validation days
    level_logits, level_labels = predict_logits(model, featurizer, level), level[target].to_numpy()
    calibration = fit_calibration(
        level_logits[-len(days) :],
        level_labels[-len(days) :],
        cfg.calibration,
        level=(level_logits, level_labels),
    )
    fold_into_output(model, calibration)
    log.info(
        "distill: calibrated (%s: logit x %.3f %+.3f) on %d validation rows, level on %d rows "
        "of the last %d days (delay rate %.3f; validation days %.3f)",
        cfg.calibration,
        calibration.scale,
        calibration.shift,
        len(days),
        len(level),
        cfg.calibration_level_days,
        level[target].mean(),
        days[target].mean(),
    )
    return calibration


def _link_parent(
    params: Params, record: TrainingRecord, version: str, teacher_version: int, variant: str
) -> None:
    """The training's parent run points at what it produced: tags and a description with
    links to the registered versions."""
    if not record.parent_run_id:
        return
    name, teacher = params.registry.model_name, params.registry.teacher_model_name
    client = tracking.client(params.tracking)
    note = (
        f"Training on {record.window.tag} (test days {record.windows.test.tag}). Registered "
        f"[{name} v{version}](#/models/{name}/versions/{version}) ({variant}), distilled from "
        f"[{teacher} v{teacher_version}](#/models/{teacher}/versions/{teacher_version})."
    )
    for key, value in {
        tag.REGISTERED_MODEL: name,
        tag.MODEL_VERSION: version,
        tag.TEACHER_VERSION: str(teacher_version),
        tag.VARIANT: variant,
        tracking.NOTE: note,
    }.items():
        client.set_tag(record.parent_run_id, key, value)


def _versus_teacher(ev: Evaluation, teacher: Evaluation, source_auc: float) -> dict[str, float]:
    """Against the network teacher (agreement, speed, size) and the teacher it was distilled
    from (`source_auc`: the ensemble's test AUC, or the network's)."""
    agree = agreement(teacher.test_scores, ev.test_scores, teacher.metrics["threshold"])
    return {
        **{f"teacher_{k}": v for k, v in agree.items()},
        "teacher_roc_auc": source_auc,
        "auc_share_of_teacher": ev.metrics["roc_auc"] / source_auc,
        "speedup_vs_teacher": ev.metrics["rows_per_s"] / teacher.metrics["rows_per_s"],
        "model_speedup_vs_teacher": ev.metrics["model_rows_per_s"]
        / teacher.metrics["model_rows_per_s"],
        "parameter_share_of_teacher": ev.metrics["parameters"] / teacher.metrics["parameters"],
    }


def _stage_metrics(params: Params, name: str) -> dict:
    """What the evaluate stage wrote for `name` (teacher or baseline)."""
    path = metrics_file(params.evaluate.metrics_dir, name)
    return json.loads(path.read_text(encoding="utf-8"))


def _teacher_version(params: Params) -> int:
    return int(_stage_metrics(params, "teacher")["registry_version"])


def _baseline_metrics(params: Params) -> dict:
    """The baseline as the evaluate stage measured it, priced at today's `cost`."""
    baseline = _stage_metrics(params, "baseline")
    return {**baseline, "cost_per_million": cost_per_million(baseline, params.cost)}


def _frontier_png(params: Params, rows: list[dict]) -> Path:
    from tasks.training.plots import frontier_plot  # matplotlib: only when plotting

    target = params.evaluate.plots_dir / "distill" / "frontier.png"
    return frontier_plot(rows, target, params.cost.currency)
