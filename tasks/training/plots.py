"""Evaluation plots: PNGs a person reads at a glance, and JSON that `dvc plots show` renders.

Every model given is overlaid on the same axes (teacher vs baseline vs student), with the same
colour per model in every figure. matplotlib loads only inside the functions, on the Agg
backend: no display is needed and `loopline --help` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tasks.core.io import atomic_path
from tasks.core.metrics import calibration_error, calibration_table

Curves = dict[str, tuple[np.ndarray, np.ndarray]]

FIGSIZE = (6.0, 4.5)
DPI = 110
HIST_BINS = 40


def _both_classes(y_true: np.ndarray) -> bool:
    """ROC and PR curves need positives and negatives; a single-class set has neither curve."""
    return np.unique(np.asarray(y_true)).size == 2


def _save(fig: Any, target: Path) -> Path:
    """Write a figure as PNG atomically, then free it (pyplot keeps every open figure alive)."""
    import matplotlib.pyplot as plt

    try:
        fig.tight_layout()
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return target


def evaluation_plots(curves: Curves, out_dir: Path, calibration_bins: int) -> dict[str, Path]:
    """Write roc.png, pr.png, calibration.png and score_hist.png into `out_dir`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )

    out_dir = Path(out_dir)
    colours = {name: f"C{i}" for i, name in enumerate(curves)}
    paths: dict[str, Path] = {}

    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1, label="chance")
    for name, (y, s) in curves.items():
        if _both_classes(y):
            fpr, tpr, _ = roc_curve(y, s)
            ax.plot(fpr, tpr, color=colours[name], label=f"{name} (AUC {roc_auc_score(y, s):.3f})")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
    ax.set(xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right")
    paths["roc"] = _save(fig, out_dir / "roc.png")

    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    for name, (y, s) in curves.items():
        if _both_classes(y):
            precision, recall, _ = precision_recall_curve(y, s)
            ap = average_precision_score(y, s)
            ax.step(
                recall, precision, where="post", color=colours[name], label=f"{name} (AP {ap:.3f})"
            )
            ax.axhline(np.mean(y), color=colours[name], ls=":", lw=1)
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall curve (dotted: base rate)")
    ax.set(xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="upper right")
    paths["pr"] = _save(fig, out_dir / "pr.png")

    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1, label="perfectly calibrated")
    for name, (y, s) in curves.items():
        table = calibration_table(y, s, calibration_bins)
        ax.plot(
            [row["mean_score"] for row in table],
            [row["observed_rate"] for row in table],
            marker="o",
            ms=4,
            color=colours[name],
            label=f"{name} (ECE {calibration_error(table):.3f})",
        )
    ax.set(xlabel="mean predicted probability", ylabel="observed positive rate")
    ax.set(title=f"Calibration ({calibration_bins} equal-width bins)", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left")
    paths["calibration"] = _save(fig, out_dir / "calibration.png")

    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    edges = np.linspace(0, 1, HIST_BINS + 1)
    for name, (y, s) in curves.items():
        y, s = np.asarray(y).ravel(), np.asarray(s, dtype=float).ravel()
        for label, ls, part in (("positives", "-", s[y == 1]), ("negatives", "--", s[y == 0])):
            if part.size:
                ax.hist(
                    part,
                    bins=edges,
                    density=True,
                    histtype="step",
                    ls=ls,
                    lw=1.5,
                    color=colours[name],
                    label=f"{name} {label}",
                )
    ax.set(xlabel="predicted probability", ylabel="density", xlim=(0, 1))
    ax.set(title="Score distribution (solid: positives, dashed: negatives)")
    ax.legend(loc="best", fontsize="small")
    paths["score_hist"] = _save(fig, out_dir / "score_hist.png")
    return paths


def draw_frontier(ax: Any, rows: list[dict], currency: str) -> None:
    """Test AUC against cost per 1M predictions: a labelled point per variant (the selected one
    in red), the frontier dashed and ringed, a log cost axis when the costs span more than 20x."""
    for row in rows:
        selected = row.get("selected")
        point = (row["cost_per_million"], row["roc_auc"])
        ax.scatter(*point, s=60 if selected else 30, color="C3" if selected else "C0", zorder=3)
        label = row["variant"] + (" (selected)" if selected else "")
        ax.annotate(label, point, textcoords="offset points", xytext=(5, 4), fontsize=8)
    front = sorted((r for r in rows if r.get("on_frontier")), key=lambda r: r["cost_per_million"])
    ax.plot(
        [r["cost_per_million"] for r in front],
        [r["roc_auc"] for r in front],
        "--o",
        color="grey",
        markersize=11,
        markerfacecolor="none",
        label="frontier: nothing both cheaper and better",
    )
    costs = [r["cost_per_million"] for r in rows if r["cost_per_million"] > 0]
    if costs and max(costs) / min(costs) > 20:
        ax.set_xscale("log")
    ax.set_xlabel(f"{currency} per 1M predictions (measured, featurization included)")
    ax.set_ylabel("test ROC AUC")
    ax.margins(x=0.2, y=0.1)  # room for the labels right of the points
    ax.legend(loc="best", fontsize=8)


def frontier_plot(rows: list[dict], target: Path, currency: str) -> Path:
    """The frontier of `selection.frontier_rows` as a PNG: the trade-off a variant is chosen on."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    draw_frontier(ax, rows, currency)
    ax.set_title("Compression frontier (test days)")
    return _save(fig, Path(target))
