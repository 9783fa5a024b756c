"""What work costs: measured wall, CPU and GPU seconds, turned into money with the prices in
`params.yaml` (`cost`). Nothing here is a constant of the machine: every figure is measured on
the run that reports it, and the prices are the user's to set.

Training is paid once per retrain; scoring every night for the life of a model. `lifetime`
puts both side by side at the production volume set in `cost.production`.
"""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from tasks.core.config import CostConfig


@dataclass(frozen=True)
class Usage:
    """Resources one piece of work used: wall seconds, CPU seconds (all threads of this process
    and of the child processes it waited for, user + system) and GPU seconds (wall time while
    the work ran on a GPU)."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    gpu_s: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.wall_s + other.wall_s, self.cpu_s + other.cpu_s, self.gpu_s + other.gpu_s)

    def money(self, cfg: CostConfig) -> float:
        return (self.cpu_s * cfg.cpu_hour + self.gpu_s * cfg.gpu_hour) / 3600.0

    def as_dict(self, cfg: CostConfig) -> dict[str, float]:
        return {**asdict(self), "cost": self.money(cfg)}


class Meter:
    """Filled in when its `measure()` block ends."""

    usage: Usage = Usage()


def process_cpu_seconds() -> float:
    """This process's CPU plus that of the children it has waited for: the ranks of a DDP
    training run in processes of their own (via torchrun), and their seconds count too. (Dask
    workers are asked for theirs: they are not reaped until their cluster closes.)"""
    return sum(
        ru.ru_utime + ru.ru_stime
        for ru in (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
    )


@contextlib.contextmanager
def measure(on_gpu: bool = False) -> Iterator[Meter]:
    """Wall and CPU seconds of the block (CPU of the whole process and its reaped children: run
    one stage at a time)."""
    meter = Meter()
    wall, cpu = time.perf_counter(), process_cpu_seconds()
    try:
        yield meter
    finally:
        elapsed = time.perf_counter() - wall
        meter.usage = Usage(elapsed, process_cpu_seconds() - cpu, elapsed if on_gpu else 0.0)


def per_million(usage: Usage, rows: int, cfg: CostConfig) -> float:
    """Money per 1M predictions at the measured rate (nan when nothing was scored)."""
    return usage.money(cfg) * 1e6 / rows if rows else float("nan")


def lifetime(training_cost: float, cost_per_million: float, cfg: CostConfig) -> dict[str, float]:
    """One model's life at the production volume: training once, scoring every night."""
    production = cfg.production
    rows = production.rows_per_night * production.nights_per_model_life
    inference = cost_per_million * rows / 1e6
    total = training_cost + inference
    return {
        "training": training_cost,
        "inference": inference,
        "total": total,
        "inference_share": inference / total if total else float("nan"),
        "rows": rows,
    }
