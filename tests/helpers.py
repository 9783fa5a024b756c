"""Helpers shared by tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import yaml

VENV_BIN = Path(sys.executable).parent
SLICE_DAYS = 31  # the test slice: January 2013, ≈26k flights, every carrier and origin


# Small enough for a test, large enough to learn something: the slice is January 2013.
FAST_TRAINING = {
    "train": {
        "window": {"start": "2013-01-01", "end": "2013-01-31"},
        "validation_days": 3,
        "test_days": 4,
        "net": {"hidden": [32, 16], "max_embedding_dim": 4, "dropout": 0.0},
        "schedule": {
            "batch_size": 256,
            "max_epochs": 4,
            "patience": 2,
            "learning_rate": 0.003,
            "weight_decay": 0.0,
        },
    },
    "distill": {
        "net": {"hidden": [16], "max_embedding_dim": 4, "dropout": 0.0},
        "schedule": {
            "batch_size": 256,
            "max_epochs": 4,
            "patience": 2,
            "learning_rate": 0.01,
            "weight_decay": 0.0,
        },
        "prune": {"sparsity": 0.5, "finetune_epochs": 1},
    },
    "evaluate": {"latency_batch_size": 256, "latency_repeats": 3, "cost_passes": 2},
    "baseline": {"max_iter": 30},
    # A month of winter data supports less than a year does: lower floors (AUC ≈ .61 here),
    # and room for a busy CI machine.
    "promote": {
        "min_auc": 0.55,
        "min_teacher_auc_share": 0.9,
        "max_latency_ms_p95": 1000.0,
        "max_ece": 0.2,
    },
}


def write_params(root: Path, base: dict, source: Path, **sections: dict) -> Path:
    """A params.yaml under `root` reading `source` as a file, with fast training settings and
    `sections` overridden (one level deep)."""
    params = copy.deepcopy(base)
    params["dataset"]["source"] = {"kind": "file", "path": str(source)}
    params["validate"]["min_rows"] = 100
    for overrides in (FAST_TRAINING, sections):
        for name, override in overrides.items():
            params[name] = {**params[name], **override}
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def run_cli(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    """Run the real `loopline` console script in a subprocess."""
    exe = VENV_BIN / "loopline"
    proc = subprocess.run(
        [str(exe), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=300,
    )
    return proc.returncode, proc.stdout, proc.stderr
