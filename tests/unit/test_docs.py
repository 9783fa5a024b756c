"""The docs stay complete and the repo stands on its own.

- every params.yaml key (every field of the `Params` model) has a line in docs/reference.md;
- every `loopline` command and each of its options has an entry in docs/reference.md;
- every relative Markdown link, and every docs link a message gives, points to a file (and
  heading) that exists;
- no file points outside the repo to notes it does not hold;
- the README stays short, and the docs index lists every page.
"""

from __future__ import annotations

import re
import subprocess
import typing
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from pydantic import BaseModel

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"
REFERENCE = DOCS / "reference.md"
README_MAX_LINES = 200
# Notes that are not in the repo: nothing tracked may point to them.
# Spelt in pieces, so this file does not itself point outside the repo.
OUTSIDE_POINTERS = ("DESIGN" + ".md", "../" + "shared", "shared" + "/stack/")


def markdown_files() -> list[Path]:
    files = [README, *sorted(DOCS.rglob("*.md"))]
    files += [
        p for p in (REPO / "mlflow" / "README.md", REPO / "deploy" / "README.md") if p.exists()
    ]
    return files


# --- Markdown helpers -------------------------------------------------------------------------

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link keeps its text
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, with GitHub's -1, -2 suffixes for repeats."""
    seen: dict[str, int] = {}
    result = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def links(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, target) of every Markdown link and image outside code."""
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        for match in LINK.finditer(CODE_SPAN.sub("", line)):
            yield number, match.group(1)


def sections(text: str) -> dict[str, str]:
    """Heading text → the text under it, up to the next heading of the same or a higher level."""
    lines = list(prose_lines(text))
    heads = [
        (i, len(m.group(1)), m.group(2))
        for i, (_, line) in enumerate(lines)
        if (m := HEADING.match(line))
    ]
    result = {}
    for k, (i, level, title) in enumerate(heads):
        end = next((j for j, lvl, _ in heads[k + 1 :] if lvl <= level), len(lines))
        result[title] = "\n".join(line for _, line in lines[i:end])
    return result


# --- a. every params key ----------------------------------------------------------------------


def nested_model(annotation: typing.Any) -> type[BaseModel] | None:
    """The pydantic model behind a field's annotation (through `X | None` and `list[X]`); None
    for plain values, and for `dict[str, Model]`, whose section key alone is documented."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) is dict:
        return None
    for arg in typing.get_args(annotation):
        found = nested_model(arg)
        if found is not None:
            return found
    return None


def config_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every dotted key a params file can hold, as it is spelt there (aliases, e.g. `validate`)."""
    keys = []
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name)
        keys.append(key)
        inner = nested_model(field.annotation)
        if inner is not None:
            keys.extend(config_keys(inner, key + "."))
    return keys


def test_every_params_key_has_a_line_in_the_reference():
    from tasks.core.config import Params

    keys = config_keys(Params)
    assert len(keys) > 50 and any(k.count(".") >= 2 for k in keys), keys  # the walk went deep
    text = REFERENCE.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\s*(?:\|\s*|[-*]\s+)`([^`]+)`", text, flags=re.MULTILINE))
    missing = [key for key in keys if key not in documented]
    assert not missing, (
        f"{REFERENCE.relative_to(REPO)} has no line (a table row or bullet starting with the "
        f"key in backticks) for {len(missing)} params key(s): {', '.join(missing)}"
    )


# --- b. every command and option ------------------------------------------------------------


def root_group() -> click.Group:
    """The `loopline` click group behind `flows.cli:main` (the entry point may wrap it)."""
    from flows import cli

    if isinstance(cli.main, click.Group):
        return cli.main
    groups = [value for value in vars(cli).values() if isinstance(value, click.Group)]
    nested = {id(sub) for group in groups for sub in group.commands.values()}
    roots = [group for group in groups if id(group) not in nested]
    assert len(roots) == 1, f"flows.cli: expected one top-level click group, found {roots}"
    return roots[0]


def commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, click.Command]]:
    """(full name, command) of every command and subcommand, depth first."""
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        yield " ".join(path), command
        if isinstance(command, click.Group):
            yield from commands(command, path)


def long_options(command: click.Command) -> list[str]:
    return [
        opt
        for param in command.params
        if isinstance(param, click.Option) and not param.hidden
        for opt in (*param.opts, *param.secondary_opts)
        if opt.startswith("--")
    ]


def test_every_command_and_option_has_an_entry_in_the_reference():
    group = root_group()
    listed = [("", group), *commands(group)]
    assert len(listed) > 5, listed  # the walk found the commands
    by_title = sections(REFERENCE.read_text(encoding="utf-8"))
    problems = []
    for name, command in listed:
        entry = f"`loopline {name}`" if name else "`loopline`"
        body = next((text for title, text in by_title.items() if title.strip() == entry), None)
        if body is None:
            problems.append(f"no heading {entry}")
            continue
        problems += [
            f"{entry}: option {opt} not described"
            for opt in long_options(command)
            if not re.search(rf"`{re.escape(opt)}(?![\w-])", body)
        ]
    assert not problems, f"{REFERENCE.relative_to(REPO)}: " + "; ".join(problems)


# --- c. links ---------------------------------------------------------------------------------


def test_relative_links_point_to_files_and_headings_that_exist():
    broken = []
    for page in markdown_files():
        for number, target in links(page):
            if re.match(r"^(https?:|mailto:)", target):
                continue
            where = f"{page.relative_to(REPO)}:{number}: {target}"
            path_part, _, anchor = target.partition("#")
            resolved = (page.parent / path_part).resolve() if path_part else page
            if not resolved.exists():
                broken.append(f"{where} (no such file)")
            elif not resolved.is_relative_to(REPO):
                broken.append(f"{where} (outside the repo)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{where} (no such heading in {resolved.relative_to(REPO)})")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_docs_sections_messages_point_to_exist():
    """Each link a message gives (tasks/core/docs.py) names a docs file and one of its headings."""
    from tasks.core import docs

    pointed = {k: v for k, v in vars(docs).items() if k.isupper() and isinstance(v, str)}
    assert pointed
    for name, link in pointed.items():
        file, _, anchor = link.partition("#")
        assert (REPO / file).is_file(), f"{name}: {file} does not exist"
        assert anchor in anchors(REPO / file), f"{name}: no heading #{anchor} in {file}"


def test_slugs_follow_github():
    assert github_slug("What it costs: training vs inference, and the compression frontier") == (
        "what-it-costs-training-vs-inference-and-the-compression-frontier"
    )
    assert github_slug("DVC: `dvc repro`, `dvc metrics show`") == "dvc-dvc-repro-dvc-metrics-show"
    assert github_slug("Tally (measured 2026-11-23, 2 shared CPU cores)") == (
        "tally-measured-2026-11-23-2-shared-cpu-cores"
    )


# --- d. nothing points outside the repo -------------------------------------------------------


def repo_files() -> list[Path]:
    """Tracked files, and new ones git does not ignore (so new docs are checked before commit)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"not a git checkout: {exc}")
    names = sorted({name for name in out.decode("utf-8").split("\0") if name})
    return [REPO / name for name in names]


def test_no_file_points_outside_the_repo():
    this = Path(__file__).resolve()
    offenders = []
    for path in repo_files():
        if path.resolve() == this or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:  # binary
            continue
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            hits = [p for p in OUTSIDE_POINTERS if p in line]
            if hits:
                offenders.append(f"{path.relative_to(REPO)}:{number}: {', '.join(hits)}")
    assert not offenders, (
        "these lines point to notes that are not in the repo (cite docs/ instead):\n"
        + "\n".join(offenders)
    )


# --- e. a short README, an index that lists every page ----------------------------------------


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES})"


def test_the_index_and_the_readme_link_every_docs_page():
    pages = {p.resolve() for p in DOCS.glob("*.md") if p.name != "README.md"}
    assert pages, "docs/ holds no pages"
    for index in (DOCS / "README.md", README):
        linked = {
            (index.parent / target.partition("#")[0]).resolve()
            for _, target in links(index)
            if not re.match(r"^(https?:|mailto:|#)", target)
        }
        missing = sorted(p.name for p in pages - linked)
        assert not missing, f"{index.relative_to(REPO)} does not link {missing}"
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "](README.md)" in text, f"docs/{page.name} does not link back to the index"
