"""The training loop's checkpoint: written atomically each epoch, read back only by the same run.

A run is identified by its key (a digest of data, config and seed): a checkpoint left by another
run is ignored, never resumed into the wrong model.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from tasks.core.io import atomic_path

log = logging.getLogger(__name__)


def save_checkpoint(path: Path, key, model, optimizer, state, history, best_state) -> None:
    """Everything a resumed run needs to take exactly the steps the uninterrupted one would:
    weights, optimizer, loop state, history, best weights so far and the RNG (for dropout)."""
    payload = {
        "key": key,
        "state": state,
        "history": history,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "best_state": best_state,
        "rng": torch.get_rng_state(),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def resume(path: Path, key: str, model, optimizer) -> dict | None:
    """Load a checkpoint of this very run (same key); anything else is ignored."""
    if not path.exists():
        return None
    try:
        payload = torch.load(path, weights_only=True)  # tensors and plain values only
    except Exception as exc:
        log.warning("ignoring unreadable checkpoint %s (%s)", path, exc)
        return None
    if payload.get("key") != key:
        log.info("checkpoint %s belongs to another run; starting fresh", path)
        return None
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    torch.set_rng_state(payload["rng"])
    return payload
