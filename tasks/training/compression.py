"""Structured magnitude pruning of the student: whole hidden units are cut, so the saved model
really has smaller layers (fewer bytes, fewer multiply-adds), unlike masking weights to zero.

A unit whose incoming weights are small (L1 norm) moves its pre-activation little whatever the
input, so it is the cheapest to lose. The pruned net is then fine-tuned on the same
distillation loss for a few epochs to win back what the cut cost.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from pathlib import Path

import torch
from torch import nn

from tasks.core.config import DistillConfig
from tasks.model.nets import TabularNet
from tasks.training.loop import TrainingData, distillation_loss, evaluate_loss, fit, run_key

log = logging.getLogger(__name__)


def _linears(model: TabularNet) -> list[nn.Linear]:
    """The MLP's Linear layers in order: every hidden one, then the output layer."""
    return [layer for layer in model.mlp if isinstance(layer, nn.Linear)]


def units_to_keep(model: TabularNet, sparsity: float) -> list[torch.Tensor]:
    """Per hidden layer, the indices (ascending) of the round((1 - sparsity) * width) units with
    the largest L1 norm of incoming weights; at least one, so the layer never disappears."""
    kept = []
    for layer in _linears(model)[:-1]:
        width = layer.out_features
        keep = max(1, round((1 - sparsity) * width))
        norms = layer.weight.detach().abs().sum(dim=1)
        # stable: equal norms keep the lower index, so the cut is reproducible
        top = torch.argsort(norms, descending=True, stable=True)[:keep]
        kept.append(torch.sort(top).values)
    return kept


@torch.no_grad()
def prune_units(model: TabularNet, kept: list[torch.Tensor]) -> TabularNet:
    """A smaller net with only the `kept` hidden units: their rows of each hidden layer and the
    matching input columns of the layer after; embeddings unchanged."""
    config = dataclasses.replace(model.config, hidden=[len(k) for k in kept])
    pruned = TabularNet(config)
    for source, target in zip(model.embeddings, pruned.embeddings, strict=True):
        target.weight.copy_(source.weight)
    source_layers, target_layers = _linears(model), _linears(pruned)
    columns = torch.arange(source_layers[0].in_features)
    for i, (source, target) in enumerate(zip(source_layers, target_layers, strict=True)):
        rows = kept[i] if i < len(kept) else torch.arange(source.out_features)
        target.weight.copy_(source.weight[rows][:, columns])
        target.bias.copy_(source.bias[rows])
        columns = rows
    pruned.eval()
    return pruned


def prune_student(
    student: TabularNet,
    train: TrainingData,
    validation: TrainingData,
    cfg: DistillConfig,
    *,
    seed: int,
    key: str,
) -> TabularNet:
    """Cut `distill.prune.sparsity` of each hidden layer, then fine-tune for
    `distill.prune.finetune_epochs` on the student's own loss (none when 0). A fine-tune that
    never beats the cut net's validation loss is undone: the cut net is returned as it was."""
    pruned = prune_units(student, units_to_keep(student, cfg.prune.sparsity))
    if cfg.prune.finetune_epochs == 0:
        return pruned
    cut_state = copy.deepcopy(pruned.state_dict())
    cut_loss = evaluate_loss(pruned, validation, cfg.schedule.batch_size)
    schedule = cfg.schedule.model_copy(update={"max_epochs": cfg.prune.finetune_epochs})
    result = fit(
        pruned,
        train,
        validation,
        schedule,
        seed=seed,
        # its own folder: a crash here must not clobber, or be mistaken for, the student's
        checkpoint_dir=Path(cfg.checkpoint_dir) / "pruned",
        key=run_key(key, cfg.prune.model_dump_json()),
        loss_fn=distillation_loss(cfg.temperature, cfg.alpha),
        name="student_pruned",
    )
    tuned_loss = evaluate_loss(result.model, validation, cfg.schedule.batch_size)
    if not tuned_loss < cut_loss:  # also when the fine-tune diverged to NaN
        log.info(
            "student_pruned: fine-tuning never beat the cut net (val log loss %.4f vs %.4f); "
            "keeping the cut net",
            tuned_loss,
            cut_loss,
        )
        result.model.load_state_dict(cut_state)
    return result.model
