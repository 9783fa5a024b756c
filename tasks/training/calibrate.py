"""Calibration folded into the network: probabilities that mean what they say.

The delay rate moves over a year (.23 → .31 → .13 on the flights), so a network trained on a
window is over- or under-confident on the next one. A Platt map sigmoid(a·logit + b), or a
temperature sigmoid(logit / T), is fitted on the validation days (the freshest labelled days
before the test days) and folded into the output layer's weights and bias. A Platt shift can be
refitted on a longer stretch of the freshest days (`distill.calibration_level_days`): a week's
delay rate is mostly its weather, so a shift fitted on one week chases it (on the flights a
validation week at .39 against a next fortnight at .20 gave an ECE of .22 where a four-week level
gave .12). Nothing else
changes: the registered model, the pyfunc model, bulk and nightly scoring serve calibrated
probabilities through the same forward pass, and the ranking (AUC) is untouched, as a > 0.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import expit
from torch import nn

log = logging.getLogger(__name__)

# Newton steps on the 2-parameter log loss: converges in a handful; a cap guards the odd case.
MAX_STEPS = 50
TOLERANCE = 1e-10


@dataclass(frozen=True)
class Calibration:
    """logit ↦ scale · logit + shift."""

    method: str
    scale: float = 1.0
    shift: float = 0.0


def fit_calibration(
    logits: np.ndarray,
    labels: np.ndarray,
    method: str,
    level: tuple[np.ndarray, np.ndarray] | None = None,
) -> Calibration:
    """The map that minimises log loss on (logits, labels): Platt fits scale and shift,
    temperature the scale alone. With `level` (logits, labels of a longer stretch of fresh
    days), Platt's shift is refitted there with the scale kept, so the calibrated scores aim at
    that stretch's base rate. A map that would reverse the ranking (scale <= 0) is refused: it
    means the validation days disagree with the model, and identity is kept."""
    if method == "none" or len(np.unique(labels)) < 2:
        return Calibration(method)
    x = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    features = np.column_stack([x, np.ones_like(x)]) if method == "platt" else x[:, None]
    theta = _log_loss_minimum(features, y, np.zeros_like(x), start=[1.0, 0.0][: features.shape[1]])
    scale, shift = float(theta[0]), float(theta[1]) if method == "platt" else 0.0
    if not np.isfinite([scale, shift]).all() or scale <= 0:
        log.warning("calibration: %s fit gave scale %.3g; kept the identity", method, scale)
        return Calibration(method)
    if method == "platt" and level is not None and len(np.unique(level[1])) == 2:
        level_x = scale * np.asarray(level[0], dtype=np.float64)
        ones = np.ones((len(level_x), 1))
        refit = _log_loss_minimum(ones, np.asarray(level[1], np.float64), level_x, [shift])
        if np.isfinite(refit[0]):
            shift = float(refit[0])
    return Calibration(method, scale, shift)


def _log_loss_minimum(
    features: np.ndarray, y: np.ndarray, offset: np.ndarray, start: list[float]
) -> np.ndarray:
    """Newton steps to theta minimising the log loss of sigmoid(features @ theta + offset)."""
    theta = np.array(start, dtype=np.float64)
    for _ in range(MAX_STEPS):
        p = expit(features @ theta + offset)
        gradient = features.T @ (p - y)
        hessian = (features * (p * (1 - p))[:, None]).T @ features
        step = np.linalg.solve(hessian + 1e-9 * np.eye(len(theta)), gradient)
        theta -= step
        if float(np.abs(step).max()) < TOLERANCE:
            break
    return theta


@torch.no_grad()
def fold_into_output(model: nn.Module, calibration: Calibration) -> nn.Module:
    """Scale and shift the final Linear layer in place: its logit becomes a·logit + b."""
    output = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    output.weight.mul_(calibration.scale)
    output.bias.mul_(calibration.scale).add_(calibration.shift)
    return model
