"""Batch scoring end to end (Parquet in → featurize → forward → Parquet out), per variant.

- ours: `tasks.bulk_score.score_parquet` (what `loopline predict` runs): streamed batches,
  categoricals read as Parquet dictionaries, one batch in memory at a time;
- raw limit: the same sizes through the bare parts, each timed alone in this run: pyarrow reads
  the columns, the network runs on tensors built beforehand, pyarrow writes the output;
- common approach: `pd.read_parquet` → `mlflow.pyfunc.load_model(...).predict(frame)` →
  `to_parquet`, the model saved as the registry saves it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from bench.common import Row, at_least, best_of
from bench.project import Scratch
from bench.workload import (
    VARIANTS,
    output_like,
    read_columns,
    save_pyfunc,
    variant,
    write_rows,
)
from tasks.bulk_score import score_parquet
from tasks.config import Params
from tasks.featurize import Encoded, Lookups
from tasks.score import Champion

log = logging.getLogger(__name__)

ROWS = 1_000_000


def run(scratch: Scratch) -> list[Row]:
    params = scratch.params
    work = scratch.root / "bench-scoring"
    work.mkdir(exist_ok=True)
    source = write_rows(params, work / "rows.parquet", ROWS)
    rows: list[Row] = []
    ours: dict[str, float] = {}  # end-to-end rows/s of each variant
    for name in VARIANTS:
        figures = _variant(params, name, source, work)
        ours[name] = figures[0].value
        rows += figures
    return [
        *rows,
        Row("scoring", "student / teacher, end to end", ours["student"] / ours["teacher"], "x"),
        Row(
            "scoring",
            "int8 / fp32 student, end to end",
            ours["student_int8"] / ours["student"],
            "x",
        ),
    ]


def _variant(params: Params, name: str, source: Path, work: Path) -> list[Row]:
    """Ours (first), the raw limit, the common approach and the two ratios."""
    champion = variant(params, name)
    ids = params.dataset.id_columns
    target = work / f"{name}.parquet"

    def ours() -> None:
        score_parquet(champion, source, target, id_columns=ids, batch_rows=params.score.chunk_rows)

    ours()  # warm: first-touch allocations, the page cache
    ours_s = best_of(ours)
    parts, featurize_s = _raw_limit(params, champion, source, work)
    raw_s = sum(parts.values())
    floor_s = raw_s + featurize_s  # ours if reading, scoring and writing cost nothing extra
    common_s = _common(params, name, source, work)
    split = ", ".join(f"{part} {seconds:.2f} s" for part, seconds in parts.items())
    log.info(
        "scoring %s: ours %.2f s, raw %.2f s (%s), common %.2f s",
        name,
        ours_s,
        raw_s,
        split,
        common_s,
    )
    return [
        Row(
            "scoring",
            f"{name}: ours (read → featurize → forward → write)",
            ROWS / ours_s,
            "rows/s",
            f"batches of {params.score.chunk_rows:,}",
        ),
        Row("scoring", f"{name}: raw limit (bare parts)", ROWS / raw_s, "rows/s", split),
        Row("scoring", f"{name}: common (pandas + mlflow pyfunc)", ROWS / common_s, "rows/s"),
        Row(
            "scoring",
            f"{name}: featurize alone (not in the raw limit)",
            featurize_s,
            "s",
            f"caps ours / raw limit at {raw_s / floor_s:.2f}",
        ),
        at_least("scoring", f"{name}: ours / raw limit", raw_s / ours_s, "share", 0.7),
        at_least(
            "scoring",
            f"{name}: ours / common",
            common_s / ours_s,
            "x",
            3,
            f"at most {common_s / floor_s:.2f}x with featurizing and the raw limit's parts only",
        ),
    ]


def _raw_limit(
    params: Params, champion: Champion, source: Path, work: Path
) -> tuple[dict[str, float], float]:
    """The bare parts' seconds (read, forward, write), and featurizing timed alone."""
    import torch

    columns = read_columns(params, champion)
    dictionaries = champion.featurizer.categorical
    read = min(  # the faster of a plain read and ours (categoricals as dictionaries)
        best_of(lambda: pq.read_table(source, columns=columns)),
        best_of(lambda: pq.read_table(source, columns=columns, read_dictionary=dictionaries)),
    )
    table = pq.read_table(source, columns=columns, read_dictionary=dictionaries)
    batches = table.to_batches(max_chunksize=params.score.chunk_rows)
    lookups: Lookups = {}
    encoded: list[Encoded] = []

    def featurize_all() -> None:
        encoded[:] = [champion.featurizer.transform_arrow(b, lookups) for b in batches]

    featurize = best_of(featurize_all)
    tensors = [(torch.from_numpy(e.categorical), torch.from_numpy(e.numeric)) for e in encoded]

    @torch.inference_mode()
    def forward() -> None:
        for cats, nums in tensors:
            torch.sigmoid(champion.model(cats, nums)).numpy()

    forward()
    output = output_like(table, params.dataset.id_columns)
    write = best_of(lambda: pq.write_table(output, work / "raw.parquet"))
    return {"read": read, "forward": best_of(forward), "write": write}, featurize


def _common(params: Params, name: str, source: Path, work: Path) -> float:
    import mlflow

    served = mlflow.pyfunc.load_model(str(save_pyfunc(params, name, source, work / name)))
    ids = params.dataset.id_columns

    def common() -> None:
        frame = pd.read_parquet(source)
        scores = served.predict(frame)["score"].to_numpy()
        frame[ids].assign(score=scores, prediction=(scores >= 0.5).astype("int8")).to_parquet(
            work / "common.parquet", index=False
        )

    return best_of(common, repeat=1)
