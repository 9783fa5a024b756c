"""Batch scoring end to end (Parquet in → featurize → forward → Parquet out), per variant.

- ours: `tasks.serving.bulk.score_parquet` (what `loopline predict` runs): streamed batches,
  categoricals read as Parquet dictionaries, each batch featurized and scored by one of
  one-torch-thread workers, a few batches in memory at a time;
- raw limit: the same sizes through the bare parts, each timed alone in this run: pyarrow reads
  the columns, the network runs on tensors built beforehand (the fastest of one stream on all
  torch threads or the batches shared out to one-thread workers, on whole batches or on the
  scorer's slices), pyarrow writes the output;
- common approach: `pd.read_parquet` → `mlflow.pyfunc.load_model(...).predict(frame)` →
  `to_parquet`, the model saved as the registry saves it.

All of a variant's figures are timed in turns, round after round (as many as fit in 25 s, 3 to
10), and each is its best round.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from bench.common import Row, at_least, best_interleaved
from bench.project import Scratch
from bench.workload import (
    VARIANTS,
    output_like,
    read_columns,
    save_pyfunc,
    variant,
    write_rows,
)
from tasks.core.config import Params
from tasks.model import predict
from tasks.model.featurize import ArrowEncoder
from tasks.serving.bulk import score_parquet, scoring_threads
from tasks.serving.champion import Champion

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
    timed = best_interleaved(
        {
            "ours": ours,
            **_raw_parts(params, champion, source, work),
            "common": _common(params, name, source, work),
        }
    )
    ours_s, featurize_s, common_s = timed.pop("ours"), timed.pop("featurize"), timed.pop("common")
    parts = {
        "read": min(timed.pop("read"), timed.pop("read (dictionaries)")),
        "forward": min(timed.pop(form) for form in [*timed] if form.startswith("forward")),
        "write": timed.pop("write"),
    }
    raw_s = sum(parts.values())
    floor_s = raw_s + featurize_s  # ours if reading, scoring and writing cost nothing extra
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


def _raw_parts(
    params: Params, champion: Champion, source: Path, work: Path
) -> dict[str, Callable[[], object]]:
    """The bare parts (read, forward, write), each in every form it can take, the fastest of
    which is the limit, and featurizing alone."""
    import torch

    columns = read_columns(params, champion)
    dictionaries = champion.featurizer.categorical
    table = pq.read_table(source, columns=columns, read_dictionary=dictionaries)
    batches = table.to_batches(max_chunksize=params.score.chunk_rows)
    encode = ArrowEncoder(champion.featurizer)  # as ours: it reuses its buffers per batch
    encoded = [champion.featurizer.transform_arrow(b) for b in batches]
    tensors = [(torch.from_numpy(e.categorical), torch.from_numpy(e.numeric)) for e in encoded]

    @torch.inference_mode()
    def forward(pair: tuple[torch.Tensor, torch.Tensor]) -> None:
        torch.sigmoid(champion.model(*pair)).numpy()

    def sliced(pair: tuple[torch.Tensor, torch.Tensor]) -> None:  # as ours runs the network
        predict.forward(champion.model, *pair)

    def split(run: Callable[[tuple[torch.Tensor, torch.Tensor]], None]) -> None:
        """The batches shared out to scoring threads, as ours does."""
        with scoring_threads() as workers, ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, tensors))

    output = output_like(table, params.dataset.id_columns)
    return {
        "read": lambda: pq.read_table(source, columns=columns),
        "read (dictionaries)": lambda: pq.read_table(
            source, columns=columns, read_dictionary=dictionaries
        ),
        "featurize": lambda: [encode(b) for b in batches],
        # one stream on all torch threads, or shared out; whole batches or ours' slices
        "forward": lambda: [forward(pair) for pair in tensors],
        "forward (slices)": lambda: [sliced(pair) for pair in tensors],
        "forward (split)": lambda: split(forward),
        "forward (split slices)": lambda: split(sliced),
        "write": lambda: pq.write_table(output, work / "raw.parquet"),
    }


def _common(params: Params, name: str, source: Path, work: Path) -> Callable[[], None]:
    import mlflow

    served = mlflow.pyfunc.load_model(str(save_pyfunc(params, name, source, work / name)))
    ids = params.dataset.id_columns

    def common() -> None:
        frame = pd.read_parquet(source)
        scores = served.predict(frame)["score"].to_numpy()
        frame[ids].assign(score=scores, prediction=(scores >= 0.5).astype("int8")).to_parquet(
            work / "common.parquet", index=False
        )

    return common
