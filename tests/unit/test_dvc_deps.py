"""dvc.yaml's code deps cannot drift from the imports: `dvc repro` reruns a stage exactly when
code it runs has changed.

Each stage's code is what `tasks.stages.<name>` imports, followed through every project import
(function-level ones and modules started by name, such as torchrun's `-m tasks...`), skipping
`if TYPE_CHECKING:` blocks, which never run.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MODULE_NAME = re.compile(r"^tasks(\.\w+)+$")


def _module_file(module: str) -> Path | None:
    base = REPO / module.replace(".", "/")
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _runtime_nodes(tree: ast.AST):
    """Every node except those under `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for branch in node.orelse for n in [branch, *_runtime_nodes(branch)])
            continue
        yield node
        yield from _runtime_nodes(node)


def _imported(nodes) -> set[str]:
    """Project modules named by imports (and `from pkg import module`) or by string constants."""
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tasks"):
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("tasks"))
        elif isinstance(node, ast.Constant) and MODULE_NAME.match(str(node.value)):
            names.add(node.value)
    return names


def code_of(modules: set[str]) -> set[Path]:
    """The project files `modules` run, their packages' `__init__` and everything they import."""
    seen: set[Path] = set()
    todo = list(modules)
    while todo:
        module = todo.pop()
        path = _module_file(module)
        if path is None or path in seen:
            continue
        seen.add(path)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += _imported(_runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))))
    return {p for p in seen if p.stat().st_size > 0}  # an empty __init__ runs no code


def stage_code(name: str) -> set[Path]:
    """What `loopline stage NAME` runs: tasks/stages.py's module level and NAME's function."""
    stages = REPO / "tasks" / "stages.py"
    tree = ast.parse(stages.read_text(encoding="utf-8"))
    function = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    return {stages} | code_of(_imported(top) | _imported(ast.walk(function)))


def uncovered(files: set[Path], deps: list[str]) -> list[str]:
    """Files no dep names, itself or through a folder above it."""
    roots = [REPO / d for d in deps]
    return sorted(
        str(f.relative_to(REPO))
        for f in files
        if not any(f == root or root in f.parents for root in roots)
    )


def _stages() -> dict[str, dict]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def _deps(stage: dict) -> list[str]:
    return [d if isinstance(d, str) else next(iter(d)) for d in stage.get("deps", [])]


@pytest.mark.parametrize("name", list(_stages()))
def test_every_file_a_stage_runs_is_one_of_its_deps(name):
    stage = _stages()[name]
    assert stage["cmd"] == f"loopline stage {name}"
    missing = uncovered(stage_code(name), _deps(stage))
    assert not missing, f"dvc.yaml stage {name!r} lacks deps on code it runs: {missing}"


def test_the_check_fails_when_a_needed_dep_is_removed():
    """Take a file the distill stage really runs out of its deps: the check must name it."""
    stage = _stages()["distill"]
    deps = [d for d in _deps(stage) if d != "tasks/training/selection.py"]
    assert uncovered(stage_code("distill"), deps) == ["tasks/training/selection.py"]


def test_code_started_by_module_name_counts_as_imported():
    """torchrun starts the DDP ranks as `-m tasks.training.ddp_worker`: train depends on it."""
    assert REPO / "tasks" / "training" / "ddp_worker.py" in stage_code("train")


def test_every_stage_dep_exists():
    for name, stage in _stages().items():
        for dep in _deps(stage):
            if dep.startswith(("tasks/", "flows/")):
                assert (REPO / dep).exists(), f"dvc.yaml stage {name!r}: {dep} does not exist"
