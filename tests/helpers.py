"""Helpers shared by tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import yaml

VENV_BIN = Path(sys.executable).parent


# Small enough for a test, large enough to learn something: the slice is 2013-01-01..01-10.
FAST_TRAINING = {
    "train": {
        "window": {"start": "2013-01-01", "end": "2013-01-10"},
        "validation_days": 2,
        "test_days": 2,
        "net": {"hidden": [32, 16], "max_embedding_dim": 4, "dropout": 0.0},
        "schedule": {
            "batch_size": 256,
            "max_epochs": 3,
            "patience": 2,
            "learning_rate": 0.003,
            "weight_decay": 0.0,
        },
    },
    "distill": {
        "net": {"hidden": [8], "max_embedding_dim": 2, "dropout": 0.0},
        "schedule": {
            "batch_size": 256,
            "max_epochs": 3,
            "patience": 2,
            "learning_rate": 0.005,
            "weight_decay": 0.0,
        },
    },
    "evaluate": {"latency_batch_size": 256, "latency_repeats": 3},
    "baseline": {"max_iter": 30},
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
