"""Warm starts against training from scratch, side by side in one run: a champion trained on
`train.window` (flights: January-March), then a retrain on the window `loopline train --until`
takes (`train.window.start` through `--until`), once from scratch and once from the champion's
weights (`tasks/training/warm.py`), on the same data and seed. Reported as ratios of this run's
own figures: training CPU-seconds (of the fit alone; featurizing is the same for both), epochs
run and test AUC.

Arms, teacher and student alike: `scratch` (the shipped schedule), `scratch_p1` (patience 1,
the control: is a saving the warm start's, or only stopping sooner's?), `warm` (the shipped
schedule from the champion), `warm_p1` (patience 1 from the champion, i.e. `fine_tune:
{max_epochs: <schedule's>, patience: 1, lr_scale: 1.0}`). The students learn from the scratch
retrain teacher's logits (the network teacher alone: the baseline blend is the same for every
arm and left out). Run in the project after `dvc repro validate`:

    python -m bench.bench_warm_start --until 2013-10-01 [--teachers-only]

Writes reports/bench/warm_start.json (schema in bench/common.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sklearn.metrics import roc_auc_score

from bench.common import Row, save
from tasks.core.config import FineTune, NetShape, Params, Schedule, load_params
from tasks.core.runtime import go_offline, setup_logging
from tasks.data.split import Split, load_split, recency_weights, split_windows, training_window
from tasks.model.featurize import Featurizer
from tasks.model.nets import TabularNet
from tasks.model.predict import predict_logits, predict_proba
from tasks.stages import measured
from tasks.training.loop import (
    LossFn,
    TrainingData,
    distillation_loss,
    fit,
    hard_label_loss,
    seed_everything,
)
from tasks.training.teacher import encode
from tasks.training.warm import Start, scratch_net, transfer

REPORT = Path("reports/bench/warm_start.json")
log = logging.getLogger("bench.warm_start")


@dataclass(frozen=True)
class Window:
    """One training window, encoded once for every arm trained on it."""

    split: Split
    featurizer: Featurizer
    train: TrainingData
    validation: TrainingData


@dataclass(frozen=True)
class Trained:
    model: TabularNet
    cpu_s: float
    epochs: int
    auc: float


def window(params: Params, until: dt.date | None, teacher: Trained | None = None) -> Window:
    """The window the stage would train on; with `teacher`, its logits ride along (to
    distill from)."""
    cfg, target = params.train, params.dataset.target.name
    span = training_window(cfg, until)
    split = load_split(params, span, split_windows(span, cfg.validation_days, cfg.test_days))
    features = params.dataset.features
    featurizer = Featurizer.fit(
        split.train, features.categorical, features.numeric, cfg.min_category_count
    )
    logits = None if teacher is None else predict_logits(teacher.model, featurizer, split.train)
    weights = recency_weights(split.train, span.end, cfg.half_life_days)
    return Window(
        split,
        featurizer,
        encode(featurizer, split.train, target, logits, weights),
        encode(featurizer, split.validation, target),
    )


def train(
    params: Params,
    data: Window,
    shape: NetShape,
    schedule: Schedule,
    loss_fn: LossFn,
    champion: tuple[TabularNet, Featurizer] | None = None,
    fine_tune: FineTune | None = None,
) -> Trained:
    """One arm: seeded as the stage seeds, from scratch or from `champion`'s weights."""
    seed_everything(params.train.seed, params.train.threads)
    if champion is None:
        begin = Start(scratch_net(data.featurizer, shape), None, "bench")
    else:
        begin = Start(transfer(*champion, data.featurizer, shape), "champion")
    schedule = begin.schedule(schedule, fine_tune)
    with tempfile.TemporaryDirectory(prefix="loopline-warm-bench-") as tmp:
        cpu = time.process_time()
        result = fit(
            begin.model,
            data.train,
            data.validation,
            schedule,
            seed=params.train.seed,
            checkpoint_dir=Path(tmp),
            key="bench",
            loss_fn=loss_fn,
            name="bench",
        )
        cpu_s = time.process_time() - cpu
    y = data.split.test[params.dataset.target.name].to_numpy()
    auc = float(roc_auc_score(y, predict_proba(result.model, data.featurizer, data.split.test)))
    return Trained(result.model, cpu_s, len(result.history), auc)


def arms(
    params: Params,
    data: Window,
    shape: NetShape,
    schedule: Schedule,
    loss_fn: LossFn,
    champion: tuple[TabularNet, Featurizer],
) -> dict[str, Trained]:
    patient = FineTune(max_epochs=schedule.max_epochs, patience=1, lr_scale=1.0)
    out = {
        "scratch": train(params, data, shape, schedule, loss_fn),
        "scratch_p1": train(
            params, data, shape, schedule.model_copy(update={"patience": 1}), loss_fn
        ),
        "warm": train(params, data, shape, schedule, loss_fn, champion),
        "warm_p1": train(params, data, shape, schedule, loss_fn, champion, patient),
    }
    for name, arm in out.items():
        log.info("%s: %.1f CPU-s, %d epochs, test AUC %.4f", name, arm.cpu_s, arm.epochs, arm.auc)
    return out


def rows(model: str, trained: dict[str, Trained]) -> list[Row]:
    """Each arm against scratch: CPU-seconds and epochs as ratios, AUC as a difference."""
    base = trained["scratch"]
    out = [
        Row(
            "warm_start",
            f"{model} scratch: CPU-s, epochs, test AUC",
            base.cpu_s,
            "s",
            f"{base.epochs} epochs, AUC {base.auc:.4f}",
        )
    ]
    for name, arm in trained.items():
        if name == "scratch":
            continue
        out += [
            Row(
                "warm_start",
                f"{model} {name} / scratch CPU-s",
                arm.cpu_s / base.cpu_s,
                "x",
                f"{arm.cpu_s:.0f} vs {base.cpu_s:.0f} s; {arm.epochs} vs {base.epochs} epochs",
            ),
            Row(
                "warm_start",
                f"{model} {name} - scratch test AUC",
                arm.auc - base.auc,
                "AUC",
                f"{arm.auc:.4f} vs {base.auc:.4f}",
            ),
        ]
    return out


def run(params: Params, until: dt.date, students: bool = True) -> list[Row]:
    distill = params.distill
    first = window(params, None)
    log.info("champion: teacher on %s", first.split.windows.train.tag)
    teacher = train(params, first, params.train.net, params.train.schedule, hard_label_loss)
    later = window(params, until)
    log.info("retrain: teacher arms on %s", later.split.windows.train.tag)
    teachers = arms(
        params,
        later,
        params.train.net,
        params.train.schedule,
        hard_label_loss,
        (teacher.model, first.featurizer),
    )
    if not students:
        return rows("teacher", teachers)
    soft = distillation_loss(distill.temperature, distill.alpha)
    first = window(params, None, teacher)
    student = train(params, first, distill.net, distill.schedule, soft)
    distilled = window(params, until, teachers["scratch"])
    log.info("retrain: student arms, distilled from the scratch teacher")
    students_trained = arms(
        params, distilled, distill.net, distill.schedule, soft, (student.model, first.featurizer)
    )
    return rows("teacher", teachers) + rows("student", students_trained)


def main() -> int:
    go_offline()
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--until", default="2013-10-01", type=dt.date.fromisoformat)
    parser.add_argument("--teachers-only", action="store_true", help="skip the student arms")
    args = parser.parse_args()
    params = measured(load_params(args.params))
    result = run(params, args.until, students=not args.teachers_only)
    for r in result:
        print(f"{r.name:<45} {r.value:>10.4f} {r.unit:<4} {r.note}")
    print(f"written: {save(result, REPORT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
