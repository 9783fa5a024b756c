"""Pruning, variant selection and the AUC-cost frontier: real torch on tiny nets, hand-made
tables for the rules, and one real distillation (the session's trained project)."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import torch

from tasks.core.config import Params
from tasks.model.featurize import Featurizer
from tasks.model.nets import (
    NetConfig,
    TabularNet,
    artifact_bytes,
    load_model,
    quantize_int8,
    save_model,
)
from tasks.model.predict import predict_proba
from tasks.training.compression import prune_student, prune_units, units_to_keep
from tasks.training.loop import TrainingData, evaluate_loss
from tasks.training.selection import frontier_rows, pareto_flags, select_variant

NET = NetConfig(
    cardinalities=[5, 3], embedding_dims=[2, 2], numeric_width=3, hidden=[10, 6], dropout=0.0
)


def _net(config: NetConfig = NET, seed: int = 0) -> TabularNet:
    torch.manual_seed(seed)
    return TabularNet(config).eval()


def _inputs(rows: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    cats = torch.stack(
        [torch.randint(0, card, (rows,), generator=generator) for card in NET.cardinalities], 1
    )
    return cats, torch.randn(rows, NET.numeric_width, generator=generator)


def _hidden_weights(model: TabularNet) -> list[torch.Tensor]:
    return [layer.weight for layer in model.mlp if isinstance(layer, torch.nn.Linear)][:-1]


def test_pruning_keeps_the_largest_units_and_computes_what_they_computed():
    model = _net()
    kept = units_to_keep(model, sparsity=0.5)
    assert [len(k) for k in kept] == [5, 3]  # round(0.5 * 10), round(0.5 * 6)
    for weight, keep in zip(_hidden_weights(model), kept, strict=True):
        norms = weight.detach().abs().sum(dim=1)
        cut = sorted(set(range(len(norms))) - set(keep.tolist()))
        assert norms[keep].min() > norms[cut].max()  # every kept unit outweighs every cut one

    pruned = prune_units(model, kept)
    assert pruned.config.hidden == [5, 3]
    # The full net with the cut units' outgoing weights zeroed computes the same logits.
    zeroed = copy.deepcopy(model)
    linears = [layer for layer in zeroed.mlp if isinstance(layer, torch.nn.Linear)]
    with torch.no_grad():
        for i, keep in enumerate(kept):
            cut = [u for u in range(linears[i].out_features) if u not in set(keep.tolist())]
            linears[i + 1].weight[:, cut] = 0.0
    cats, nums = _inputs()
    with torch.no_grad():
        expected, got = zeroed(cats, nums), pruned(cats, nums)
        assert not torch.allclose(model(cats, nums), expected)  # the cut did change something
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_a_layer_keeps_at_least_one_unit():
    assert [len(k) for k in units_to_keep(_net(), sparsity=0.99)] == [1, 1]


def _featurizer() -> tuple[Featurizer, pd.DataFrame]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"x": rng.normal(size=400), "colour": rng.choice(["red", "green", "blue"], size=400)}
    )
    return Featurizer.fit(frame, ["colour"], ["x"], min_count=1), frame


def test_pruned_models_are_smaller_and_round_trip(tmp_path):
    featurizer, frame = _featurizer()
    model = _net(NetConfig.for_featurizer(featurizer, [64, 32], 4, 0.0))
    pruned = prune_units(model, units_to_keep(model, sparsity=0.5))
    folders = {
        "student": save_model(model, featurizer, tmp_path / "student"),
        "pruned": save_model(pruned, featurizer, tmp_path / "pruned"),
        "pruned_int8": save_model(quantize_int8(pruned), featurizer, tmp_path / "pruned_int8"),
    }
    sizes = {name: artifact_bytes(folder) for name, folder in folders.items()}
    assert sizes["pruned_int8"] < sizes["pruned"] < sizes["student"]

    loaded, loaded_featurizer = load_model(folders["pruned"])
    assert loaded.config.hidden == [32, 16]
    np.testing.assert_array_equal(
        predict_proba(loaded, loaded_featurizer, frame), predict_proba(pruned, featurizer, frame)
    )
    int8, _ = load_model(folders["pruned_int8"])
    np.testing.assert_array_equal(
        predict_proba(int8, featurizer, frame),
        predict_proba(quantize_int8(pruned), featurizer, frame),
    )


def test_prune_student_fine_tunes_only_when_asked(tmp_path, base_params_dict):
    featurizer, frame = _featurizer()
    true_logit = 2.0 * frame["x"].to_numpy() + np.where(frame["colour"] == "red", 1.5, -0.5)
    labels = (np.random.default_rng(1).random(len(frame)) < 1 / (1 + np.exp(-true_logit))) * 1
    data = TrainingData.from_encoded(
        featurizer.transform(frame), labels, true_logit.astype(np.float32)
    )
    train, validation = data.batch(slice(0, 300)), data.batch(slice(300, None))
    distill = Params.model_validate(base_params_dict).distill
    schedule = distill.schedule.model_copy(update={"batch_size": 32, "learning_rate": 0.01})
    student = _net(NetConfig.for_featurizer(featurizer, [16], 4, 0.0))

    def pruned_with(epochs: int) -> TabularNet:
        cfg = distill.model_copy(
            update={
                "schedule": schedule,
                "prune": distill.prune.model_copy(update={"finetune_epochs": epochs}),
                "checkpoint_dir": tmp_path / "ckpt",
            }
        )
        return prune_student(student, train, validation, cfg, seed=3, key="k")

    cut_only = pruned_with(0)
    expected = prune_units(student, units_to_keep(student, distill.prune.sparsity))
    for a, b in zip(cut_only.state_dict().values(), expected.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    tuned = pruned_with(3)
    assert tuned.config.hidden == cut_only.config.hidden
    assert evaluate_loss(tuned, validation, 64) < evaluate_loss(cut_only, validation, 64)
    assert not any((tmp_path / "ckpt").rglob("*.pt"))  # a finished fine-tune leaves nothing

    # A fine-tune that only makes things worse (a wild learning rate) is undone.
    schedule = schedule.model_copy(update={"learning_rate": 50.0})
    wrecked = pruned_with(2)
    for a, b in zip(wrecked.state_dict().values(), expected.state_dict().values(), strict=True):
        assert torch.equal(a, b)


# variant: (roc_auc, cost_per_million, artifact_bytes)
TABLE = {
    "teacher": (0.760, 10.0, 1000),
    "student": (0.752, 2.0, 100),
    "student_int8": (0.751, 3.0, 40),
    "student_pruned": (0.749, 1.0, 60),
    "student_pruned_int8": (0.700, 0.5, 30),
}


def _candidates(table=TABLE) -> dict[str, dict]:
    keys = ("roc_auc", "cost_per_million", "artifact_bytes")
    return {name: dict(zip(keys, row, strict=True)) for name, row in table.items()}


def _select(table=TABLE, policy="cheapest_within", tolerance=0.005, allow_teacher=False):
    return select_variant(
        _candidates(table), policy, tolerance, "student", allow_teacher, currency="USD"
    )


def test_the_cheapest_variant_within_tolerance_is_selected():
    # best student AUC .752; within .005: student, int8, pruned (.749); pruned costs least
    selection = _select()
    assert selection.variant == "student_pruned"
    assert selection.reason == (
        "student_pruned: 1 USD per 1M predictions, cheapest among 3 variants within 0.005 "
        "of the best AUC 0.7520 (student)"
    )
    assert {r["variant"] for r in selection.table if r["shortlisted"]} == {
        "student",
        "student_int8",
        "student_pruned",
    }
    # a tighter tolerance excludes the pruned student (.749 < .750): the student is next
    assert _select(tolerance=0.002).variant == "student"


def test_equal_costs_go_to_the_smaller_artifact_but_a_quantized_one_must_be_cheaper():
    table = {**TABLE, "student_int8": (0.751, 1.0, 40)}  # as cheap as the pruned one, smaller
    assert _select(table).variant == "student_int8"
    candidates = _candidates(table)
    candidates["student_int8"]["quantized"] = 1
    chosen = select_variant(candidates, "cheapest_within", 0.005, "student", False, "USD", 2.0)
    assert chosen.variant == "student_pruned"  # a tie: the float variant wins
    assert "then float over int8" in chosen.reason
    candidates["student_int8"]["cost_per_million"] = 0.4  # cheaper beyond the 2x band
    assert (
        select_variant(candidates, "cheapest_within", 0.005, "student", False, "USD", 2.0).variant
        == "student_int8"
    )


def test_costs_within_the_tie_band_never_decide(base_params_dict):
    """Machine load moves measured costs by 10-20 %: within the band the variant is chosen by
    parameters, then bytes, so every ordering of noisy costs gives the same answer."""
    band = base_params_dict["promote"]["select"]["cost_tie_ratio"]
    params = {"student": 900, "student_int8": 900, "student_pruned": 450}
    noisy = [(1.00, 1.10, 1.05), (1.10, 1.00, 1.02), (1.05, 1.02, 1.10)]
    chosen = set()
    for costs in noisy:
        candidates = {
            name: {
                "roc_auc": 0.75,
                "cost_per_million": cost,
                "artifact_bytes": 100 - i,
                "parameters": params[name],
            }
            for i, (name, cost) in enumerate(zip(params, costs, strict=True))
        }
        selection = select_variant(
            candidates, "cheapest_within", 0.005, "student", False, "USD", cost_tie_ratio=band
        )
        chosen.add(selection.variant)
        assert "a tie won by the fewest parameters" in selection.reason
    assert chosen == {"student_pruned"}
    # a variant clearly dearer than the band still loses, whatever its size
    candidates["student_pruned"]["cost_per_million"] = 1.10 * band * 1.2
    assert (
        select_variant(
            candidates, "cheapest_within", 0.005, "student", False, "USD", cost_tie_ratio=band
        ).variant
        == "student_int8"
    )


def test_the_teacher_only_where_allowed():
    table = {**TABLE, "teacher": (0.760, 0.1, 1000)}  # best and cheapest
    excluded = _select(table)
    assert excluded.variant == "student_pruned"
    assert "teacher" not in {r["variant"] for r in excluded.table}
    assert _select(table, allow_teacher=True).variant == "teacher"


def test_fixed_policy_returns_distill_candidate():
    selection = _select(policy="fixed")
    assert selection.variant == "student"  # though the pruned student is cheaper
    assert "fixed by distill.candidate" in selection.reason


def test_frontier_flags_follow_the_definition():
    # (auc, cost); on the frontier unless another point has auc >= and cost <=, one strictly
    points = {
        "teacher": (0.76, 10.0),  # the best AUC: nothing is better
        "baseline": (0.74, 12.0),  # the teacher is better and cheaper
        "student": (0.75, 2.0),  # only the teacher is better, and it costs more
        "student_int8": (0.75, 3.0),  # the student: same AUC, cheaper
        "student_pruned": (0.74, 1.0),  # cheapest, tied with its twin: neither strictly better
        "student_pruned_int8": (0.74, 1.0),
    }
    expected = [True, False, True, False, True, True]
    assert pareto_flags(list(points.values())) == expected

    metrics = {n: {"roc_auc": a, "cost_per_million": c} for n, (a, c) in points.items()}
    metrics["student"]["artifact_bytes"] = 100
    rows = frontier_rows(metrics, selected="student")
    assert [r["variant"] for r in rows] == list(points)
    assert [r["on_frontier"] for r in rows] == expected
    assert [r["selected"] for r in rows] == [n == "student" for n in points]
    assert rows[2]["artifact_bytes"] == 100 and rows[1]["artifact_bytes"] is None
