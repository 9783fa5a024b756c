"""Helpers shared by tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import yaml

VENV_BIN = Path(sys.executable).parent


def write_params(root: Path, base: dict, source: Path, **sections: dict) -> Path:
    """A params.yaml under `root` reading `source` as a file, with sections overridden."""
    params = copy.deepcopy(base)
    params["dataset"]["source"] = {"kind": "file", "path": str(source)}
    params["validate"]["min_rows"] = 100
    for name, override in sections.items():
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
