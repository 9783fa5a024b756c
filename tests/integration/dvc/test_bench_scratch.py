"""`make bench` works in a scratch copy of the project: it must hold every output of the
ingest stage it does not re-run, or its `dvc commit` fails and the whole bench stops."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from helpers import VENV_BIN

from bench.project import scratch_project
from tasks import stages
from tasks.core.config import load_params

REPO = Path(__file__).resolve().parents[3]


def test_the_bench_scratch_project_holds_what_ingest_wrote(project):
    shutil.copy2(REPO / "dvc.yaml", project / "dvc.yaml")
    stages.STAGES["ingest"](load_params(project / "params.yaml"))
    with scratch_project(project / "params.yaml") as scratch:
        proc = subprocess.run(
            [str(VENV_BIN / "dvc"), "commit", "-f", "ingest"],
            cwd=scratch.root,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "ingest" in (scratch.root / "dvc.lock").read_text()
