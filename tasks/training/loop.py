"""One training loop for teacher and student: seeded, early stopping, a checkpoint each epoch.

Determinism on CPU: the caller seeds before building the model; each epoch's shuffle comes from
its own generator (seed + epoch) and the global RNG state (dropout) is checkpointed, so a run
resumed after a kill takes exactly the steps the uninterrupted run would have taken.

Given a `Distributed` context (one process of a DDP group, see tasks/training/ddp.py) the same
loop trains data-parallel: every rank takes the same seeded epoch order and keeps its
DistributedSampler shard of it, DistributedDataParallel averages the gradients, the validation
loss is summed over the ranks' slices on rank 0 and broadcast (so every rank stops at the same
epoch), and only rank 0 writes checkpoints. Each rank reseeds its dropout per epoch from (seed,
epoch, rank), so a resumed DDP run repeats the uninterrupted one without checkpointing every
rank's RNG.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tasks.core.config import Schedule
from tasks.core.layout import CHECKPOINT
from tasks.model.featurize import Encoded
from tasks.training.checkpoint import resume, save_checkpoint

log = logging.getLogger(__name__)

LossFn = Callable[[torch.Tensor, "TrainingData"], torch.Tensor]


@dataclass(frozen=True)
class TrainingData:
    """Tensors for one split or batch; `teacher_logits` only when distilling, `weights` only
    with recency weighting (`train.half_life_days`)."""

    categorical: torch.Tensor
    numeric: torch.Tensor
    labels: torch.Tensor
    teacher_logits: torch.Tensor | None = None
    weights: torch.Tensor | None = None

    @classmethod
    def from_encoded(
        cls,
        encoded: Encoded,
        labels: np.ndarray,
        teacher_logits: np.ndarray | None = None,
        weights: np.ndarray | None = None,
    ) -> TrainingData:
        return cls(  # row-major: training gathers rows for each batch
            torch.from_numpy(np.ascontiguousarray(encoded.categorical)),
            torch.from_numpy(np.ascontiguousarray(encoded.numeric)),
            torch.from_numpy(np.asarray(labels, dtype=np.float32)),
            _optional_tensor(teacher_logits),
            _optional_tensor(weights),
        )

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, index: torch.Tensor | slice) -> TrainingData:
        return TrainingData(
            self.categorical[index],
            self.numeric[index],
            self.labels[index],
            None if self.teacher_logits is None else self.teacher_logits[index],
            None if self.weights is None else self.weights[index],
        )

    def to(self, device: torch.device) -> TrainingData:
        """On `device` (the very same tensors when they are there already, as on the CPU)."""
        return TrainingData(
            self.categorical.to(device),
            self.numeric.to(device),
            self.labels.to(device),
            None if self.teacher_logits is None else self.teacher_logits.to(device),
            None if self.weights is None else self.weights.to(device),
        )


def _optional_tensor(values: np.ndarray | None) -> torch.Tensor | None:
    return None if values is None else torch.from_numpy(np.asarray(values, dtype=np.float32))


@dataclass(frozen=True)
class Distributed:
    """This process's place in an initialised torch.distributed group."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def sum_on_main(self, values: list[float]) -> list[float]:
        """Sum over the ranks, computed on rank 0 and broadcast: every rank gets rank 0's very
        bits, so decisions taken on them (early stopping) agree everywhere."""
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.reduce(tensor, dst=0)
        dist.broadcast(tensor, src=0)
        return tensor.tolist()

    def gather(self, value: int) -> list[int]:
        import torch.distributed as dist

        parts = [
            torch.zeros(1, dtype=torch.int64, device=self.device) for _ in range(self.world_size)
        ]
        dist.all_gather(parts, torch.tensor([value], dtype=torch.int64, device=self.device))
        return [int(p.item()) for p in parts]


def shard(order: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rank `rank`'s rows of one epoch's order, as torch's DistributedSampler cuts them: the
    order wrapped around to a multiple of `world_size` (every rank must run the same number of
    batches, or DDP's gradient all-reduces would not pair up), then every world_size-th row."""
    total = -(-len(order) // world_size) * world_size
    padded = order.repeat(-(-total // max(len(order), 1)))[:total]
    return padded[rank::world_size]


@dataclass
class FitResult:
    model: nn.Module
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    resumed_from_epoch: int | None = None
    seconds: float = 0.0
    samples_per_s: float = 0.0


def seed_everything(seed: int, threads: int) -> None:
    """Same seed, same data, same threads → the same weights, on CPU."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


def run_key(*parts: object) -> str:
    """Identifies a training run, so a checkpoint is only resumed by the run that wrote it."""
    text = json.dumps([str(p) for p in parts], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _weighted_bce(logits: torch.Tensor, targets: torch.Tensor, batch: TrainingData) -> torch.Tensor:
    """Binary cross-entropy, a weighted mean where the rows carry recency weights."""
    if batch.weights is None:
        return nn.functional.binary_cross_entropy_with_logits(logits, targets)
    losses = nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return (losses * batch.weights).sum() / batch.weights.sum()


def hard_label_loss(logits: torch.Tensor, batch: TrainingData) -> torch.Tensor:
    return _weighted_bce(logits, batch.labels, batch)


def distillation_loss(temperature: float, alpha: float) -> LossFn:
    """Hinton et al.: soft targets at temperature T (scaled by T²) mixed with the hard labels."""

    def loss(logits: torch.Tensor, batch: TrainingData) -> torch.Tensor:
        assert batch.teacher_logits is not None
        soft_targets = torch.sigmoid(batch.teacher_logits / temperature)
        soft = _weighted_bce(logits / temperature, soft_targets, batch)
        return alpha * temperature**2 * soft + (1 - alpha) * hard_label_loss(logits, batch)

    return loss


def fit(
    model: nn.Module,
    train: TrainingData,
    validation: TrainingData,
    schedule: Schedule,
    *,
    seed: int,
    checkpoint_dir: Path,
    key: str,
    loss_fn: LossFn = hard_label_loss,
    name: str = "model",
    on_epoch: Callable[[dict], None] | None = None,
    distributed: Distributed | None = None,
) -> FitResult:
    """Train with Adam until the validation log loss stops improving; keep the best weights.
    With `distributed`, the batch (`schedule.batch_rows`) is global: each rank takes its share."""
    main = distributed is None or distributed.is_main
    trained = _wrap(model, distributed)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=schedule.learning_rate, weight_decay=schedule.weight_decay
    )
    state = {"epoch": 0, "best_loss": float("inf"), "best_epoch": 0, "bad_epochs": 0}
    history: list[dict] = []
    best_state = copy.deepcopy(model.state_dict())
    checkpoint = Path(checkpoint_dir) / CHECKPOINT
    resumed = resume(checkpoint, key, model, optimizer)
    if resumed is not None:
        state, history, best_state = resumed["state"], resumed["history"], resumed["best_state"]
        log.info("%s: resuming after epoch %d from %s", name, state["epoch"], checkpoint)
    resumed_from = state["epoch"] if resumed is not None else None

    batch_rows = schedule.batch_rows(len(train))
    if batch_rows < schedule.batch_size and main:
        log.info(
            "%s: %d training rows fill fewer than %d batches of %d: batches of %d",
            name,
            len(train),
            schedule.min_steps_per_epoch,
            schedule.batch_size,
            batch_rows,
        )
    started, samples = time.perf_counter(), 0
    progress = _progress(disable=not main)
    with progress:
        task = progress.add_task(name, total=schedule.max_epochs, completed=state["epoch"])
        while state["epoch"] < schedule.max_epochs and state["bad_epochs"] < schedule.patience:
            epoch = state["epoch"] + 1
            epoch_started = time.perf_counter()
            train_loss, rows = _train_epoch(
                trained, optimizer, train, batch_rows, seed + epoch, loss_fn, distributed
            )
            samples += len(train)
            val_loss = _validation_loss(model, validation, schedule.batch_size, distributed)
            improved = val_loss < state["best_loss"] - 1e-6
            if improved:
                best_state = copy.deepcopy(model.state_dict())
                state.update(best_loss=val_loss, best_epoch=epoch, bad_epochs=0)
            else:
                state["bad_epochs"] += 1
            state["epoch"] = epoch
            seconds = time.perf_counter() - epoch_started
            record = {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_log_loss": val_loss,
                "seconds": seconds,
                "samples_per_s": len(train) / seconds,
            }
            if distributed is not None:
                record["rows_per_rank"] = rows
            history.append(record)
            if on_epoch is not None:
                on_epoch(record)
            if main:
                save_checkpoint(checkpoint, key, model, optimizer, state, history, best_state)
            progress.update(
                task,
                completed=epoch,
                description=f"{name} val_loss {val_loss:.4f} "
                f"(best {state['best_loss']:.4f} @ {state['best_epoch']})",
            )
    model.load_state_dict(best_state)
    model.to("cpu").eval()  # the plain network on the CPU, whatever device the ranks used
    if main:
        checkpoint.unlink(missing_ok=True)  # finished: the next run starts fresh
    seconds = time.perf_counter() - started
    return FitResult(
        model=model,
        history=history,
        best_epoch=state["best_epoch"],
        resumed_from_epoch=resumed_from,
        seconds=seconds,
        samples_per_s=samples / seconds if seconds else 0.0,
    )


def _wrap(model: nn.Module, distributed: Distributed | None) -> nn.Module:
    """The module the optimizer steps through: DDP (sharing `model`'s parameters) or `model`."""
    if distributed is None:
        return model
    from torch.nn.parallel import DistributedDataParallel

    model.to(distributed.device)
    on_gpu = distributed.device.type == "cuda"
    return DistributedDataParallel(model, device_ids=[distributed.device] if on_gpu else None)


def _train_epoch(
    model,
    optimizer,
    data: TrainingData,
    batch_size: int,
    epoch_seed: int,
    loss_fn: LossFn,
    distributed: Distributed | None = None,
) -> tuple[float, list[int]]:
    """One pass over this process's rows; the mean training loss over all ranks and the rows
    each rank trained on."""
    model.train()
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(epoch_seed))
    device = torch.device("cpu")
    if distributed is not None:
        order = shard(order, distributed.rank, distributed.world_size)
        batch_size = max(1, batch_size // distributed.world_size)
        device = distributed.device
        torch.manual_seed(epoch_seed * 1024 + distributed.rank)  # this rank's dropout stream
    total, count = 0.0, 0
    for start in range(0, len(order), batch_size):
        batch = data.batch(order[start : start + batch_size]).to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(batch.categorical, batch.numeric), batch)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(batch.labels)
        count += len(batch.labels)
    if distributed is None:
        return total / max(count, 1), [count]
    total, all_rows = distributed.sum_on_main([total, count])
    return total / max(all_rows, 1), distributed.gather(count)


def _validation_loss(
    model: nn.Module, data: TrainingData, batch_size: int, distributed: Distributed | None
) -> float:
    """The validation log loss; under DDP each rank scores a slice and rank 0 sums them."""
    if distributed is None:
        return evaluate_loss(model, data, batch_size)
    rows = torch.tensor_split(torch.arange(len(data)), distributed.world_size)[distributed.rank]
    part = data.batch(rows).to(distributed.device)
    loss = evaluate_loss(model, part, batch_size) * len(part) if len(part) else 0.0
    total, count = distributed.sum_on_main([loss, len(part)])
    return total / count


@torch.no_grad()
def _batched_logits(
    model: nn.Module, categorical: torch.Tensor, numeric: torch.Tensor, batch_size: int = 8192
) -> torch.Tensor:
    model.eval()
    parts = [
        model(categorical[i : i + batch_size], numeric[i : i + batch_size])
        for i in range(0, len(categorical), batch_size)
    ]
    return torch.cat(parts) if parts else torch.empty(0)


def evaluate_loss(model: nn.Module, data: TrainingData, batch_size: int) -> float:
    logits = _batched_logits(model, data.categorical, data.numeric, max(batch_size, 4096))
    return float(nn.functional.binary_cross_entropy_with_logits(logits, data.labels))


def _progress(disable: bool = False) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
        disable=disable,
    )
