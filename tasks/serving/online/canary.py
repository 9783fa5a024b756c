"""The canary's sticky split: an id's hash decides, so an id is always answered by the same side
(for as long as the share and the challenger stay), whatever replica it reaches."""

from __future__ import annotations

import hashlib
from typing import Any

# Bytes of the digest read as the id's position in [0, 1).
_BYTES = 8


def id_position(key: str) -> float:
    """Where an id falls in [0, 1), uniformly and identically on every machine and run."""
    digest = hashlib.sha256(key.encode()).digest()[:_BYTES]
    return int.from_bytes(digest, "big") / 2 ** (8 * _BYTES)


def to_challenger(rows: list[dict[str, Any]], id_columns: list[str], share: float) -> list[bool]:
    """Which rows the challenger answers: those whose id falls below `share`."""
    if share <= 0:
        return [False] * len(rows)
    return [id_position("\x1f".join(str(row[c]) for c in id_columns)) < share for row in rows]
