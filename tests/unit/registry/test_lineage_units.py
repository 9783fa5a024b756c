"""Lineage facts recorded on runs and versions: the commit id, the gate verdict line."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tasks.core import tags as tag
from tasks.registry.aliases import verdict_line, with_verdict
from tasks.registry.history import Decision
from tasks.registry.tracking import flatten, git_commit


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_git_commit_is_clean_when_only_dvc_lock_changed(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "sub").mkdir()
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "first")
    sha = _git(tmp_path, "rev-parse", "HEAD")
    assert git_commit(tmp_path) == sha

    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")  # what dvc repro does
    (tmp_path / "untracked.txt").write_text("not tracked\n")
    assert git_commit(tmp_path) == sha
    assert git_commit(tmp_path / "sub") == sha  # from a sub-folder, the same answer

    (tmp_path / "code.py").write_text("x = 2\n")  # a tracked file of the code: truly dirty
    assert git_commit(tmp_path) == f"{sha}-dirty"
    assert git_commit(tmp_path / "sub") == f"{sha}-dirty"


def test_git_commit_outside_a_repository_is_unknown(tmp_path):
    assert git_commit(tmp_path) == "unknown"


def test_verdict_line_replaces_the_previous_one():
    described = "**m v2**: student\n\n- training window a..b\n\nGate verdict: pending"
    rejected = Decision("m", "2", "rejected", ["auc_floor: 0.5 vs 0.6"], compared_to="1")
    once = with_verdict(described, verdict_line(rejected))
    assert once.splitlines()[:3] == described.splitlines()[:3]
    assert once.splitlines()[-1].startswith(f"{tag.VERDICT_PREFIX} **not promoted (challenger)**")
    assert "against v1" in once and "auc_floor: 0.5 vs 0.6" in once
    forced = Decision("m", "2", "forced", ["forced by hand: ok"], compared_to="1")
    twice = with_verdict(once, verdict_line(forced))
    assert twice.count(tag.VERDICT_PREFIX) == 1 and "made champion by hand" in twice
    assert with_verdict(None, "x") == f"{tag.VERDICT_PREFIX} x"


def test_flatten_dots_nested_sections():
    assert flatten({"train": {"net": {"hidden": [32, 16]}, "seed": 7}}) == {
        "train.net.hidden": "[32, 16]",
        "train.seed": "7",
    }
