"""A retrain that starts from the champion's weights, in the trained slice: real MLflow
registry (SQLite in tmp), the real stages, the real gate."""

from __future__ import annotations

import json

import torch
from helpers import set_params

from tasks import stages
from tasks.core import tags as tag
from tasks.core.config import load_params
from tasks.core.layout import FEATURIZER_FILE
from tasks.model.featurize import Featurizer
from tasks.registry import tracking
from tasks.registry.promote import run_promote
from tasks.training import warm
from tasks.training.loop import seed_everything


def _run_tags(name: str) -> dict[str, str]:
    """The tags of the latest run named `name` (teacher or student)."""
    import mlflow

    runs = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.mlflow.runName = '{name}'",
        order_by=["attributes.start_time DESC"],
        output_format="list",
    )
    return runs[0].data.tags


def test_a_warm_retrain_starts_from_the_champion_and_is_gated_as_usual(trained_copy):
    params = load_params("params.yaml")
    scratch = json.loads((params.train.model_dir / "training.json").read_text())
    assert scratch["warm_start"] == "scratch: train.warm_start is false"
    champion = run_promote(params)
    assert champion.decision == "promoted"

    set_params(
        trained_copy,
        "train",
        warm_start=True,
        fine_tune={"max_epochs": 2, "patience": 1, "lr_scale": 0.5},
    )
    set_params(trained_copy, "distill", warm_start=True)
    params = load_params("params.yaml")
    for name in ("train", "evaluate", "distill"):
        stages.STAGES[name](params)
    decision = run_promote(params)

    retrain = json.loads((params.train.model_dir / "training.json").read_text())
    assert retrain["warm_start"] == f"v{champion.version}"
    assert retrain["epochs_run"] <= 2  # the fine-tune schedule, not the scratch one
    # It starts where the champion ended: its first epoch already beats scratch's first.
    first = retrain["history"][0]["val_log_loss"]
    assert first < scratch["history"][0]["val_log_loss"]
    tracking.configure(params.tracking)
    for run in ("teacher", "student"):
        assert _run_tags(run)[tag.WARM_START] == f"v{champion.version}"
    # The gate judges it against the champion like any candidate.
    assert decision.version != champion.version and decision.compared_to == champion.version
    assert decision.decision in {"promoted", "rejected", "insufficient_evidence"}
    assert {c["name"] for c in decision.checks} >= {"auc_vs_champion"}

    # A student of another shape cannot take the champion's weights: scratch, saying why.
    featurizer = Featurizer.load(params.train.model_dir / FEATURIZER_FILE)
    other = params.distill.net.model_copy(update={"hidden": [8]})
    seed_everything(params.train.seed, 1)
    begin = warm.start(params, "student", featurizer, other)
    assert begin.version is None
    assert begin.tag == "scratch: hidden layers differ: champion [16], retrain [8]"
    # Reading the champion drew nothing from the seeded stream: the net scratch would be.
    seed_everything(params.train.seed, 1)
    plain = warm.scratch_net(featurizer, other)
    for ours, theirs in zip(begin.model.parameters(), plain.parameters(), strict=True):
        assert torch.equal(ours, theirs)
