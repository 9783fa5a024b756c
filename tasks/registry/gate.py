"""The gate's rules, pure: what was measured goes in, named checks with readable details out.

The question is always the same: is this candidate better than what serves, on the same recent
data, with enough evidence? Absolute floors (AUC, ECE) bind only a first model: later
candidates are judged against the champion on the same holdout, so a harder season, where the
champion itself scores lower, cannot freeze a stale champion for ever. Timings are ratios of
figures measured side by side, so a busy machine gives the same verdict as an idle one; the
absolute latency ceiling is a safety net far above a quiet machine's figure.
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks.core.config import PromoteConfig
from tasks.core.metrics import RatioInterval

PROMOTED, REJECTED, INSUFFICIENT = "promoted", "rejected", "insufficient_evidence"


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    value: float | bool | None
    threshold: float | bool | None
    detail: str

    def reason(self) -> str:
        return f"{self.name}: {self.detail}"


@dataclass(frozen=True)
class Measured:
    """One model on the holdout: AUC, calibration error and its best latency round (ms p95 per
    batch), each measured in the same process as the other model's."""

    version: str
    auc: float
    ece: float
    latency_ms_p95: float
    # The candidate's: its per-call latency over the champion's, timed in turns (the median
    # and its interval).
    latency_ratio: RatioInterval | None = None


@dataclass(frozen=True)
class Holdout:
    rows: int
    positives: int

    @property
    def negatives(self) -> int:
        return self.rows - self.positives


@dataclass(frozen=True)
class Difference:
    """AUC(candidate) - AUC(champion), or their ECEs', with its paired bootstrap interval."""

    difference: float
    low: float
    high: float

    @classmethod
    def of(cls, figures: dict[str, float]) -> Difference:
        """From a paired bootstrap's figures (`tasks/core/metrics.py`)."""
        return cls(figures["difference"], figures["low"], figures["high"])

    @property
    def width(self) -> float:
        return self.high - self.low


def gate_checks(
    cfg: PromoteConfig,
    *,
    validation_passed: bool,
    candidate: Measured,
    artifact_bytes: int,
    teacher_auc: float | None,
    holdout: Holdout,
    champion: Measured | None = None,
    difference: Difference | None = None,
    ece_difference: Difference | None = None,
) -> list[Check]:
    """Every check of the gate. Without a champion (or one that cannot be scored on this
    holdout) the candidate meets the absolute floors; with one, the comparison (`difference`
    of AUCs; `ece_difference` of calibration errors, a point figure when None)."""
    checks = [
        Check(
            "validation",
            validation_passed,
            validation_passed,
            True,
            "training data passed validation" if validation_passed else "training data failed",
        ),
        _holdout_auc(candidate, champion, holdout),
    ]
    if champion is None or difference is None:
        checks += _floors(cfg, candidate)
    else:
        ece = ece_difference or Difference(*[candidate.ece - champion.ece] * 3)
        checks += _versus_champion(cfg, candidate, champion, holdout, difference, ece)
    if teacher_auc is not None:
        share = candidate.auc / teacher_auc
        checks.append(
            Check(
                "teacher_auc_share",
                share >= cfg.min_teacher_auc_share,
                share,
                cfg.min_teacher_auc_share,
                f"keeps {share:.3f} of the teacher's AUC {teacher_auc:.4f}",
            )
        )
    checks += [
        Check(
            "latency_p95",
            candidate.latency_ms_p95 <= cfg.max_latency_ms_p95,
            candidate.latency_ms_p95,
            cfg.max_latency_ms_p95,
            f"best round p95 {candidate.latency_ms_p95:.2f} ms per batch vs ceiling "
            f"{cfg.max_latency_ms_p95} ms",
        ),
        Check(
            "artifact_size",
            artifact_bytes <= cfg.max_artifact_bytes,
            artifact_bytes,
            cfg.max_artifact_bytes,
            f"{artifact_bytes:,} bytes vs budget {cfg.max_artifact_bytes:,}",
        ),
    ]
    return checks


def verdict(checks: list[Check]) -> str:
    """promoted when every check passed; insufficient evidence when only the evidence is
    lacking (the champion is kept, nothing is held against the candidate); else rejected."""
    failed = {c.name for c in checks if not c.passed}
    if not failed:
        return PROMOTED
    return INSUFFICIENT if failed == {"evidence"} else REJECTED


def _holdout_auc(candidate: Measured, champion: Measured | None, holdout: Holdout) -> Check:
    """Informational: the AUCs the decision stands on, the champion's beside the candidate's."""
    beside = f"; champion v{champion.version} {champion.auc:.4f}" if champion else ""
    return Check(
        "holdout_auc",
        True,
        candidate.auc,
        champion.auc if champion else None,
        f"{candidate.auc:.4f} on {holdout.rows:,} rows ({holdout.positives:,} positive){beside}",
    )


def _floors(cfg: PromoteConfig, candidate: Measured) -> list[Check]:
    return [
        Check(
            "auc_floor",
            candidate.auc >= cfg.min_auc,
            candidate.auc,
            cfg.min_auc,
            f"holdout AUC {candidate.auc:.4f} vs floor {cfg.min_auc} (a first model)",
        ),
        Check(
            "calibration",
            candidate.ece <= cfg.max_ece,
            candidate.ece,
            cfg.max_ece,
            f"expected calibration error {candidate.ece:.4f} vs bound {cfg.max_ece}",
        ),
    ]


def _versus_champion(
    cfg: PromoteConfig,
    candidate: Measured,
    champion: Measured,
    holdout: Holdout,
    difference: Difference,
    ece: Difference,
) -> list[Check]:
    evidence = cfg.evidence
    lacking = [
        f"{holdout.rows:,} rows < promote.evidence.min_rows {evidence.min_rows:,}"
        if holdout.rows < evidence.min_rows
        else "",
        f"{min(holdout.positives, holdout.negatives):,} rows of the rarer class < "
        f"promote.evidence.min_class_rows {evidence.min_class_rows:,}"
        if min(holdout.positives, holdout.negatives) < evidence.min_class_rows
        else "",
        f"interval width {difference.width:.4f} > promote.evidence.max_interval_width "
        f"{evidence.max_interval_width}"
        if not difference.width <= evidence.max_interval_width
        and difference.low < -cfg.max_auc_drop <= difference.high  # else decided, however wide
        else "",
    ]
    lacking = [reason for reason in lacking if reason]
    interval = (
        f"AUC difference {difference.difference:+.4f} vs champion v{champion.version}, "
        f"{evidence.confidence:.0%} interval [{difference.low:+.4f}, {difference.high:+.4f}]"
    )
    checks = [
        Check(
            "evidence",
            not lacking,
            difference.width,
            evidence.max_interval_width,
            f"insufficient evidence, champion kept: {'; '.join(lacking)} ({interval})"
            if lacking
            else f"{holdout.rows:,} rows, interval width {difference.width:.4f}",
        )
    ]
    if not lacking:
        checks.append(
            Check(
                "auc_vs_champion",
                difference.low >= -cfg.max_auc_drop,
                difference.low,
                -cfg.max_auc_drop,
                f"{interval}; lower bound vs -{cfg.max_auc_drop}",
            )
        )
    checks += [
        _calibration_versus_champion(cfg, candidate, champion, ece),
        _latency_versus_champion(cfg, candidate, champion),
    ]
    return checks


def _latency_versus_champion(cfg: PromoteConfig, candidate: Measured, champion: Measured) -> Check:
    """A later candidate fails on time only when the turns show it slower than
    `max_latency_ratio` x the champion with confidence (the lower bound of the median ratio's
    interval): a few noisy turns on a busy machine are no evidence either way."""
    ratio = candidate.latency_ratio or RatioInterval.point(
        candidate.latency_ms_p95 / champion.latency_ms_p95
    )
    limit = cfg.timing.max_latency_ratio
    return Check(
        "latency_vs_champion",
        ratio.low <= limit,
        ratio.low,
        limit,
        f"{ratio.median:.2f}x the champion's time per batch (median of {ratio.turns} calls timed "
        f"in turns, {cfg.evidence.confidence:.0%} interval [{ratio.low:.2f}, {ratio.high:.2f}]; "
        f"p95 {candidate.latency_ms_p95:.2f} vs {champion.latency_ms_p95:.2f} ms); fails when "
        f"its lower bound exceeds {limit}x",
    )


def _calibration_versus_champion(
    cfg: PromoteConfig, candidate: Measured, champion: Measured, ece: Difference
) -> Check:
    """A later candidate fails calibration only when the holdout shows it worse than the
    champion by more than `max_ece_increase` with confidence (the interval's lower bound, over
    resampled days: on the flights one calibrator's ECE ranged .004-.15 over 17 fortnights with
    their days' base rates), and it is outside the absolute `max_ece` too."""
    passed = candidate.ece <= cfg.max_ece or ece.low <= cfg.max_ece_increase
    return Check(
        "calibration",
        passed,
        ece.low,
        cfg.max_ece_increase,
        f"expected calibration error {candidate.ece:.4f} vs champion {champion.ece:.4f}: "
        f"{ece.difference:+.4f}, {cfg.evidence.confidence:.0%} interval over resampled days "
        f"[{ece.low:+.4f}, {ece.high:+.4f}]; fails when its lower bound exceeds "
        f"+{cfg.max_ece_increase} and the error exceeds {cfg.max_ece}",
    )
