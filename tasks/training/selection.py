"""Which variant of a training run becomes the candidate (`promote.select`), and the frontier
of quality against cost that the choice is made on.

Pure functions over metric dicts: the variants are measured elsewhere (tasks/training/evaluate.py);
here only the rule is applied, so it can be tested on hand-made tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# What the frontier table carries per variant, besides its name and flags.
FRONTIER_FIELDS = (
    "roc_auc",
    "cost_per_million",
    "cpu_s_per_million",
    "latency_ms_p95",
    "artifact_bytes",
    "parameters",
)


@dataclass(frozen=True)
class Selection:
    """The chosen variant, a sentence saying why, and the variants it was chosen among."""

    variant: str
    reason: str
    table: list[dict[str, Any]]


def select_variant(
    candidates: dict[str, dict],
    policy: str,
    auc_tolerance: float,
    fixed: str,
    allow_teacher: bool,
    currency: str,
    cost_tie_ratio: float = 1.0,
) -> Selection:
    """`fixed`: the variant named in params. `cheapest_within`: among the eligible variants
    (the teacher only if allowed) within `auc_tolerance` of the best eligible test AUC, the
    cheapest per 1M predictions. Measured costs within `cost_tie_ratio` of the cheapest are a
    tie, won by the fewest parameters, then a float variant over a quantized one, then the
    fewest artifact bytes, then the name: timing noise cannot change the answer for one data
    set and seed unless a variant's cost sits at the edge of the band (AUCs, parameters and
    bytes do not vary with machine load). A quantized variant only approximates its float twin
    and, for small networks on a CPU, is often slower per call (dynamic int8 quantizes each
    batch's activations: 2.7x the float student's time in a flights retrain), so it must be
    cheaper beyond the band to be chosen."""
    eligible = [name for name in candidates if allow_teacher or name != "teacher"]
    if policy == "fixed":
        return Selection(
            fixed,
            f"{fixed}: fixed by distill.candidate (promote.select.policy: fixed)",
            _table(candidates, [fixed], {fixed}),
        )
    best = max(eligible, key=lambda name: candidates[name]["roc_auc"])
    best_auc = candidates[best]["roc_auc"]
    within = [n for n in eligible if candidates[n]["roc_auc"] >= best_auc - auc_tolerance]
    cheapest = min(candidates[n]["cost_per_million"] for n in within)
    tied = [n for n in within if candidates[n]["cost_per_million"] <= cheapest * cost_tie_ratio]
    chosen = min(
        tied,
        key=lambda n: (
            candidates[n].get("parameters", 0),
            candidates[n].get("quantized", 0),
            candidates[n]["artifact_bytes"],
            n,
        ),
    )
    tie = (
        f"; {len(tied)} within {cost_tie_ratio}x of the cheapest, a tie won by the fewest "
        "parameters, then float over int8, then bytes"
        if len(tied) > 1
        else ""
    )
    reason = (
        f"{chosen}: {candidates[chosen]['cost_per_million']:.4g} {currency} per 1M "
        f"predictions, cheapest among {len(within)} variants within {auc_tolerance} of the "
        f"best AUC {best_auc:.4f} ({best}){tie}"
    )
    return Selection(chosen, reason, _table(candidates, eligible, set(within)))


def _table(candidates: dict[str, dict], names: list[str], shortlist: set[str]) -> list[dict]:
    """The variants considered, and which of them the choice was made among."""
    return [
        {
            "variant": name,
            "roc_auc": candidates[name]["roc_auc"],
            "cost_per_million": candidates[name]["cost_per_million"],
            "artifact_bytes": candidates[name]["artifact_bytes"],
            "shortlisted": name in shortlist,
        }
        for name in names
    ]


def pareto_flags(points: list[tuple[float, float]]) -> list[bool]:
    """For (auc, cost) points: True where no other point has AUC >= and cost <=, one strictly.
    Higher AUC is better, lower cost is better."""

    def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
        return a[0] >= b[0] and a[1] <= b[1] and a != b

    return [not any(dominates(other, point) for other in points) for point in points]


def frontier_rows(metrics: dict[str, dict], selected: str) -> list[dict[str, Any]]:
    """One row per variant: its AUC, cost and size figures (None where it has none, e.g. the
    baseline's bytes), whether it is on the AUC-cost frontier and whether it was selected."""
    flags = pareto_flags([(m["roc_auc"], m["cost_per_million"]) for m in metrics.values()])
    return [
        {
            "variant": name,
            **{key: m.get(key) for key in FRONTIER_FIELDS},
            "on_frontier": on_frontier,
            "selected": name == selected,
        }
        for (name, m), on_frontier in zip(metrics.items(), flags, strict=True)
    ]
