"""Docs sections that messages point to, each link defined once (tests/unit/test_docs.py checks
that every one names a heading that exists)."""

from __future__ import annotations

# Why a month or a weekday belongs in features.numeric: a categorical of them meets values never
# seen in training every new month, and the unseen-values guard fails the batch.
CYCLICAL_VALUES = "docs/your-data.md#cyclical-and-ordinal-values-are-numeric-features"
