"""Stage `validate`: run the data contract with Great Expectations, quarantine bad rows, gate.

Bad data never reaches training: clean rows go to `validate.validated_dir` only when the gate
passes; rows that break a row-level rule go to the quarantine with a `reason`; a table-level
break or too large a quarantined share raises ValidationGateError listing every failure.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.core.columns import REASON, renamed_hint
from tasks.core.config import DatasetConfig, ValidateConfig
from tasks.data.contract import Contract, build_contract
from tasks.core.errors import ValidationGateError
from tasks.core.columns import EVENT_DATE
from tasks.core.io import (
    read_table,
    tree_digest,
    write_metrics,
    write_parquet,
    write_partitioned,
    write_text,
)
from tasks.data.validation_report import render_html
from tasks.core.layout import validation_report, FEATURE_TABLE_REPORT

log = logging.getLogger(__name__)

NON_NULL_SHARE = "ExpectColumnProportionOfNonNullValuesToBeBetween"


@dataclass
class CheckResult:
    """What one expectation found: the readable rule, whether it held, how many rows broke it."""

    level: str
    expectation: str
    column: str | None
    reason: str  # what a break reads as
    success: bool
    unexpected_count: int = 0
    observed: Any = None
    examples: list[Any] = field(default_factory=list)
    rule: str = ""  # what the rule asks, in passing words ("column carrier is present")

    def describe(self) -> str:
        if self.level == "table":
            seen = f" (observed {self.observed})" if self.observed is not None else ""
            return f"{self.reason}{seen}"
        return f"{self.reason}: {self.unexpected_count} row(s), e.g. {self.examples[:3]}"


@dataclass
class Outcome:
    """The verdict on one table, and the split of its rows."""

    source: str
    rows: int
    checks: list[CheckResult]
    clean: pd.DataFrame
    quarantined: pd.DataFrame
    max_bad_fraction: float
    duration_s: float

    @property
    def bad_fraction(self) -> float:
        return len(self.quarantined) / self.rows if self.rows else 0.0

    @property
    def failures(self) -> list[str]:
        """Every reason the gate fails: table-level breaks, or the quarantined share."""
        broken = [c.describe() for c in self.checks if c.level == "table" and not c.success]
        if not broken and self.bad_fraction > self.max_bad_fraction:
            rules = [c.describe() for c in self.checks if not c.success]
            broken.append(
                f"{len(self.quarantined)} of {self.rows} rows quarantined "
                f"({self.bad_fraction:.1%} > validate.max_bad_fraction "
                f"{self.max_bad_fraction:.1%})"
            )
            broken += rules
        return broken

    @property
    def success(self) -> bool:
        return not self.failures

    def report(self) -> dict:
        return {
            "source": self.source,
            "success": self.success,
            "rows": self.rows,
            "clean_rows": len(self.clean),
            "quarantined_rows": len(self.quarantined),
            "bad_fraction": round(self.bad_fraction, 6),
            "max_bad_fraction": self.max_bad_fraction,
            "failures": self.failures,
            "checks": [c.__dict__ for c in self.checks],
            "duration_s": round(self.duration_s, 3),
            "checked_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }


def check_table(
    frame: pd.DataFrame, contract: Contract, source: str, max_bad_fraction: float
) -> Outcome:
    """Run the contract on an in-memory frame. Writes nothing."""
    started = time.perf_counter()
    frame = frame.reset_index(drop=True)
    # One GX pass (each pass hashes the whole frame); row rules only for columns present.
    table_rules = [e for e in contract.table_level if _applicable(e, frame)]
    row_rules = [e for e in contract.row_level if set(_columns(e)) <= set(frame.columns)]
    results = _gx_validate(frame, table_rules + row_rules)
    split = len(table_rules)
    checks = [_to_check(r, "table") for r in results[:split]]
    for rule, check in zip(table_rules, checks, strict=True):  # a renamed column says so
        if type(rule).__name__ == "ExpectColumnToExist" and not check.success:
            check.reason += renamed_hint([rule.column], frame.columns)
    if all(c.success for c in checks):
        row_checks = [_to_check(r, "row") for r in results[split:]]
        checks += row_checks
        reasons = _row_reasons(results[split:], row_checks)
    else:  # row rules on a broken schema would only repeat the table-level failure
        reasons = pd.Series(dtype=object)
    bad = frame.index.isin(reasons.index)
    quarantined = frame.loc[bad].assign(**{REASON: reasons.reindex(frame.index[bad]).to_numpy()})
    return Outcome(
        source=source,
        rows=len(frame),
        checks=checks,
        clean=frame.loc[~bad].reset_index(drop=True),
        quarantined=quarantined.reset_index(drop=True),
        max_bad_fraction=max_bad_fraction,
        duration_s=time.perf_counter() - started,
    )


def _applicable(expectation: Any, frame: pd.DataFrame) -> bool:
    """Whether a table rule can say anything about `frame`: a rule about a column only where
    the column is present (a missing one is reported once, by its own rule), the all-null rule
    only on a table with rows (a header-only one fails on its row count alone)."""
    kind = type(expectation).__name__
    if kind == "ExpectColumnToExist":
        return True
    if kind == NON_NULL_SHARE and frame.empty:
        return False
    return set(_columns(expectation)) <= set(frame.columns)


def _columns(expectation: Any) -> list[str]:
    column = getattr(expectation, "column", None)
    return [column] if column else list(getattr(expectation, "column_list", None) or [])


def _row_reasons(results: list[Any], checks: list[CheckResult]) -> pd.Series:
    """For every breaking row (by position), all the rules it breaks joined by '; '."""
    pairs = [
        (index, check.reason)
        for result, check in zip(results, checks, strict=True)
        for index in (result.result or {}).get("unexpected_index_list") or []
    ]
    if not pairs:
        return pd.Series(dtype=object)
    return pd.DataFrame(pairs, columns=["row", "reason"]).groupby("row")["reason"].agg("; ".join)


@functools.cache
def _gx_batch_definition() -> Any:
    """One ephemeral GX context per process: creating one costs ≈0.6 s and a temp folder."""
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    return (
        context.data_sources.add_pandas("loopline")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("whole")
    )


def _gx_validate(frame: pd.DataFrame, expectations: list[Any]) -> list[Any]:
    """Validate a frame against expectations; results in the order given."""
    import great_expectations as gx

    batch = _gx_batch_definition().get_batch(batch_parameters={"dataframe": frame})
    suite = gx.ExpectationSuite(name="contract")
    for order, expectation in enumerate(expectations):  # GX does not keep suite order
        meta = {**(expectation.meta or {}), "order": order}
        suite.add_expectation(expectation.copy(update={"meta": meta}, deep=True))
    validation = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    results = sorted(validation.results, key=lambda r: r.expectation_config.meta["order"])
    if len(results) != len(expectations):
        raise RuntimeError(f"GX returned {len(results)} results for {len(expectations)} rules")
    return results


def _to_check(result: Any, level: str) -> CheckResult:
    cfg = result.expectation_config
    details = result.result or {}
    error = (result.exception_info or {}).get("exception_message")
    unexpected = details.get("unexpected_list") or []
    return CheckResult(
        level=level,
        expectation=cfg.type,
        column=cfg.kwargs.get("column"),
        reason=cfg.meta.get("reason", cfg.type) + (f" ({error})" if error else ""),
        success=bool(result.success),
        unexpected_count=int(details.get("unexpected_count") or 0),
        observed=details.get("observed_value"),
        examples=[_plain(v) for v in unexpected[:5]],
        rule=cfg.meta.get("rule", cfg.type),
    )


def _plain(value: Any) -> Any:
    """JSON-safe sample values for the report."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    return str(value)


def run_validate(
    dataset: DatasetConfig, cfg: ValidateConfig, features_dir: Path, input_path: Path | None = None
) -> dict:
    """The stage. With `input_path`, checks that file instead and writes no validated table.
    The feature table is checked again only when it, the contract or the validated table
    changed since the last passing check (each retrain would otherwise redo the same ≈8 s)."""
    source = Path(input_path or features_dir)
    name = "features" if input_path is None else source.stem
    inputs = _inputs_digest(dataset, cfg, source)
    if input_path is None and (unchanged := _unchanged_report(cfg, inputs)) is not None:
        log.info("validate: %s unchanged since %s; passed then", source, unchanged["checked_at"])
        return unchanged
    frame = read_table(source)
    contract = build_contract(dataset, cfg.rules, min_rows=cfg.min_rows, name=name)
    outcome = check_table(frame, contract, str(source), cfg.max_bad_fraction)
    if input_path is None and outcome.success:
        write_partitioned(cfg.validated_dir, outcome.clean, partition_col=EVENT_DATE)
    report = {
        **outcome.report(),
        "inputs_digest": inputs,
        "validated_digest": tree_digest(cfg.validated_dir) if input_path is None else None,
    }
    json_path = write_metrics(validation_report(cfg.report_dir, name), report)
    html_path = write_text(validation_report(cfg.report_dir, name, ".html"), render_html(report))
    # Written even when empty: a fixed set of outputs is what DVC and the next stage expect.
    write_parquet(cfg.quarantine_dir / f"{name}.parquet", outcome.quarantined)
    if not outcome.success:
        raise ValidationGateError(str(source), outcome.failures, report_path=str(html_path))
    log.info(
        "validate: %s passed in %.2fs, %d clean, %d quarantined (%.2f%%) → %s",
        source,
        outcome.duration_s,
        len(outcome.clean),
        len(outcome.quarantined),
        100 * outcome.bad_fraction,
        json_path,
    )
    return report


def _inputs_digest(dataset: DatasetConfig, cfg: ValidateConfig, source: Path) -> str | None:
    """What a verdict depends on: the table's bytes and every setting the contract reads."""
    table = tree_digest(source) if source.exists() else None
    settings = f"{dataset.model_dump_json()}|{cfg.model_dump_json()}"
    return f"{table}:{hashlib.sha256(settings.encode()).hexdigest()[:16]}" if table else None


def _unchanged_report(cfg: ValidateConfig, inputs: str | None) -> dict | None:
    """The last report, when it passed on these very inputs and its validated table is intact."""
    path = validation_report(cfg.report_dir, FEATURE_TABLE_REPORT)
    if inputs is None or not path.is_file():
        return None
    report = json.loads(path.read_text())
    intact = report.get("validated_digest") == tree_digest(cfg.validated_dir)
    quarantine = (cfg.quarantine_dir / "features.parquet").is_file()
    same = report.get("success") and report.get("inputs_digest") == inputs
    return report if same and intact and quarantine else None
