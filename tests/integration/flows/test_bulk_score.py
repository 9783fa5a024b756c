"""Bulk scoring from Parquet: the Arrow featurizer must encode exactly as the pandas one, and
`score_parquet` must give the pandas path's scores, batch size aside, and never a partial file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import torch
from helpers import run_cli

from tasks.core.config import Params
from tasks.core.errors import LooplineError
from tasks.model.featurize import ArrowEncoder, Featurizer
from tasks.model.nets import NetConfig, TabularNet
from tasks.model.predict import predict_proba
from tasks.serving.bulk import METADATA_KEY, score_parquet
from tasks.serving.champion import Champion


@pytest.fixture(scope="module")
def params(base_params_dict) -> Params:
    return Params.model_validate(base_params_dict)


@pytest.fixture(scope="module")
def rows(feature_slice, params) -> pd.DataFrame:
    """Feature rows with what the Arrow path must map like pandas does: nulls in categoricals
    and numerics, a value never seen in training, a numeric column stored as integers."""
    frame = feature_slice.drop(columns=[params.dataset.target.name]).reset_index(drop=True)
    frame.loc[0:4, "carrier"] = None
    frame.loc[5:9, "dest"] = "ZZZ"
    frame.loc[10:14, "temp"] = np.nan
    frame["hour"] = frame["hour"].astype("int64")
    return frame


@pytest.fixture(scope="module")
def champion(rows, params) -> Champion:
    features = params.dataset.features
    featurizer = Featurizer.fit(rows.iloc[100:], features.categorical, features.numeric, 5)
    torch.manual_seed(0)
    model = TabularNet(NetConfig.for_featurizer(featurizer, [16], 8, 0.0)).eval()
    return Champion("tiny", "1", model, featurizer, 0.5, run_id="")


@pytest.mark.parametrize("dictionary", [False, True], ids=["plain", "dictionary"])
def test_arrow_encoding_equals_pandas_encoding(rows, champion, tmp_path, dictionary):
    featurizer = champion.featurizer
    path = tmp_path / "rows.parquet"
    rows.to_parquet(path, index=False)
    table = pq.read_table(path, read_dictionary=featurizer.categorical if dictionary else None)

    expected = featurizer.transform(rows)
    got = featurizer.transform_arrow(table.combine_chunks().to_batches()[0])

    np.testing.assert_array_equal(got.categorical, expected.categorical)
    np.testing.assert_allclose(got.numeric, expected.numeric, rtol=1e-6)
    assert got.oov_counts == expected.oov_counts
    assert got.oov_counts["dest"] >= 5  # the unseen airport is counted, nulls are not
    assert (got.categorical[:5, featurizer.categorical.index("carrier")] == 0).all()


def test_a_text_column_where_numbers_belong_names_the_column(rows, champion):
    broken = pa.RecordBatch.from_pandas(rows.head(10).assign(temp="warm"), preserve_index=False)
    with pytest.raises(LooplineError, match="'temp' is string, expected numbers"):
        champion.featurizer.transform_arrow(broken)


@pytest.mark.parametrize("threads", [1, 3], ids=["one-worker", "three-workers"])
def test_streamed_scores_equal_the_pandas_path_whatever_the_batch(
    rows, champion, tmp_path, monkeypatch, request, threads
):
    """Batches are scored by as many workers as torch has threads, each network pass on a
    slice of the batch: the rows must come back complete and in the file's order."""
    from tasks.model import predict

    source = tmp_path / "rows.parquet"
    rows.to_parquet(source, index=False)
    expected = predict_proba(champion.model, champion.featurizer, rows)
    expected_oov = champion.featurizer.transform(rows).oov_counts
    monkeypatch.setattr(predict, "FORWARD_ROWS", 13)  # several slices per batch
    previous = torch.get_num_threads()
    request.addfinalizer(lambda: torch.set_num_threads(previous))
    torch.set_num_threads(threads)

    for batch_rows in (len(rows), 97):  # one batch; many, the last one short
        target = tmp_path / f"scores-{batch_rows}.parquet"
        result = score_parquet(
            champion, source, target, id_columns=["flight_id"], batch_rows=batch_rows
        )
        scored = pd.read_parquet(target)
        assert result.rows == len(rows) == len(scored)
        assert list(scored.columns) == ["flight_id", "score", "prediction"]
        assert scored["flight_id"].tolist() == rows["flight_id"].tolist()
        np.testing.assert_allclose(scored["score"], expected, rtol=1e-5, atol=1e-6)
        assert (scored["prediction"] == (scored["score"] >= 0.5)).all()
        assert result.out_of_vocabulary == expected_oov
        assert result.out_of_vocabulary["dest"] >= 5
        assert torch.get_num_threads() == threads  # the workers' one thread each is undone

    meta = json.loads(pq.read_schema(target).metadata[METADATA_KEY])
    assert (meta["model_name"], meta["model_version"]) == ("tiny", "1")


def test_a_stream_encoder_encodes_each_batch_as_if_alone(rows, champion):
    """The stream encoder keeps buffers and dictionary lookups between batches: batches that
    shrink and grow, whose dictionaries change, that are slices of a larger array, and whose
    nulls hide arbitrary numbers must each encode exactly as the pandas path does."""
    featurizer = champion.featurizer
    table = pa.Table.from_pandas(rows, preserve_index=False)
    temp = table.column("temp").combine_chunks()
    data = np.nan_to_num(temp.to_numpy(zero_copy_only=False), nan=1e300)  # garbage under nulls
    hidden = pa.Array.from_buffers(pa.float64(), len(temp), [temp.buffers()[0], pa.py_buffer(data)])
    table = table.set_column(table.schema.get_field_index("temp"), "temp", hidden)
    whole = table.combine_chunks().to_batches()[0]
    encode = ArrowEncoder(featurizer)
    for start, length in [(0, 40), (3, 7), (50, 200), (7, 33)]:
        batch = whole.slice(start, length)  # Arrow arrays at an offset into their buffers
        if start == 50:  # a dictionary of its own, as the next Parquet row group has
            carrier = pc.dictionary_encode(batch.column("carrier"))
            batch = batch.set_column(batch.schema.get_field_index("carrier"), "carrier", carrier)
        got = encode(batch)
        expected = featurizer.transform(rows.iloc[start : start + length])
        np.testing.assert_array_equal(got.categorical, expected.categorical)
        np.testing.assert_array_equal(got.numeric, expected.numeric)
        assert got.oov_counts == expected.oov_counts


def test_a_damaged_page_midway_leaves_no_output(rows, champion, tmp_path):
    """Bytes flipped in the last row group: earlier batches were already written to the temp
    file when the damage is met, and none of it may surface."""
    source = tmp_path / "rows.parquet"
    rows.to_parquet(source, index=False, row_group_size=100, write_page_checksum=True)
    meta = pq.read_metadata(source)
    chunk = meta.row_group(meta.num_row_groups - 1).column(rows.columns.get_loc("temp"))
    data = bytearray(source.read_bytes())
    middle = chunk.data_page_offset + chunk.total_compressed_size // 2
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    source.write_bytes(bytes(data))
    target = tmp_path / "out" / "scores.parquet"

    with pytest.raises(LooplineError, match=r"rows.parquet: unreadable after row [1-9]"):
        score_parquet(champion, source, target, id_columns=["flight_id"], batch_rows=100)
    assert list(target.parent.iterdir()) == []


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_bytes(b"flight_id,carrier\n1,UA\n"), "not a readable Parquet file"),
        (lambda p: None, "no such file"),
    ],
    ids=["csv-not-parquet", "missing"],
)
def test_unreadable_input_is_one_clear_error(champion, tmp_path, make, message):
    source = tmp_path / "in.parquet"
    make(source)
    with pytest.raises(LooplineError, match=message):
        score_parquet(champion, source, tmp_path / "o.parquet", id_columns=[], batch_rows=10)
    assert not (tmp_path / "o.parquet").exists()


def test_missing_feature_columns_are_named(rows, champion, tmp_path):
    source = tmp_path / "rows.parquet"
    rows.drop(columns=["origin", "visib"]).to_parquet(source, index=False)
    with pytest.raises(LooplineError, match=r"lacks feature column\(s\) \['origin', 'visib'\]"):
        score_parquet(champion, source, tmp_path / "o.parquet", id_columns=[], batch_rows=10)


def test_cli_predict_scores_a_file_with_the_champion(trained_copy):
    from tasks.core.config import load_params
    from tasks.registry.promote import run_promote

    params = load_params("params.yaml")
    assert run_promote(params).decision == "promoted"
    source = trained_copy / "bulk.parquet"
    table = pd.read_parquet(params.validate_.validated_dir)
    table.to_parquet(source, index=False)

    code, out, err = run_cli("predict", "--input", str(source), "--output", "scored.parquet")

    assert code == 0, err
    scored = pd.read_parquet(trained_copy / "scored.parquet")
    assert len(scored) == len(table) and scored["score"].between(0, 1).all()
    assert f"{len(table):,} rows scored by {params.registry.model_name} v1" in out
    code, _, err = run_cli("predict", "--input", "nope.parquet", "--output", "x.parquet")
    assert code == 1 and err.strip().startswith("loopline: error: nope.parquet: no such file")
