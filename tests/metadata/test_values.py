"""--param/--metric values and values files keep their types; bad input is one clear error."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from gitmodel.metadata import MetadataError, deep_merge, get_dotted, load_values_file, parse_assignment, set_dotted


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("epochs=3", "epochs", 3),
        ("lr=1e-4", "lr", 1e-4),
        ("acc=0.93", "acc", 0.93),
        ("frozen=true", "frozen", True),
        ("layers=[1, 2]", "layers", [1, 2]),
        ("opt=adam", "opt", "adam"),
        ('tag="3"', "tag", "3"),
        ("note=two words", "note", "two words"),
        ("empty=", "empty", ""),
        ("optimizer.beta1=0.9", "optimizer.beta1", 0.9),
        ("expr=a=b", "expr", "a=b"),
    ],
)
def test_assignment_values_are_typed_as_toml_reads_them(text: str, key: str, value: object) -> None:
    got_key, got = parse_assignment(text, "--param")
    assert got_key == key
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("text", ["noequals", "=3", "bad key=1", "a..b=1"])
def test_assignment_without_a_key_is_refused(text: str) -> None:
    with pytest.raises(MetadataError, match=r"^--metric .*expected KEY=VALUE"):
        parse_assignment(text, "--metric")


EXPECTED = {"lr": 0.001, "epochs": 3, "use_amp": False, "name": "bert", "layers": [1, 2], "opt": {"beta": 0.9}}


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("p.json", '{"lr": 0.001, "epochs": 3, "use_amp": false, "name": "bert", "layers": [1, 2], "opt": {"beta": 0.9}}'),
        ("p.yaml", "lr: 0.001\nepochs: 3\nuse_amp: false\nname: bert\nlayers: [1, 2]\nopt:\n  beta: 0.9\n"),
        ("p.yml", "lr: 0.001\nepochs: 3\nuse_amp: false\nname: bert\nlayers: [1, 2]\nopt: {beta: 0.9}\n"),
        ("p.toml", 'lr = 0.001\nepochs = 3\nuse_amp = false\nname = "bert"\nlayers = [1, 2]\n[opt]\nbeta = 0.9\n'),
    ],
)
def test_values_files_keep_types(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    got = load_values_file(path, "--params-file")
    assert got == EXPECTED
    assert type(got["epochs"]) is int and type(got["lr"]) is float and type(got["use_amp"]) is bool


def test_yaml_dates_stay_dates(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("evaluated: 2026-03-01\n")
    assert load_values_file(path, "--metrics-file") == {"evaluated": datetime.date(2026, 3, 1)}


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("p.json", '{"lr": null}', "lr is null"),
        ("p.json", "[1, 2]", "must hold one table"),
        ("p.json", "{bad json", "not valid JSON"),
        ("p.yaml", "a: [1, 2\n", "not valid YAML"),
        ("p.toml", "a = \n", "not valid TOML"),
        ("p.txt", "a=1", "use a .json, .yaml, .yml or .toml file"),
        ("p.yaml", "nested: {x: null}\n", "nested.x is null"),
    ],
)
def test_bad_values_files_are_refused_by_name(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(MetadataError) as info:
        load_values_file(path, "--params-file")
    assert str(info.value).startswith(f"--params-file {path}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_values_file(tmp_path: Path) -> None:
    with pytest.raises(MetadataError, match="cannot read it"):
        load_values_file(tmp_path / "absent.json", "--metrics-file")


def test_dotted_keys_and_merge() -> None:
    table: dict = {"a": 1}
    set_dotted(table, "opt.beta", 0.9)
    set_dotted(table, "opt.eps", 1e-8)
    assert table == {"a": 1, "opt": {"beta": 0.9, "eps": 1e-8}}
    assert get_dotted(table, "opt.beta") == (True, 0.9)
    assert get_dotted(table, "opt.gamma") == (False, None)
    assert get_dotted(table, "a.b") == (False, None)
    merged = deep_merge(table, {"opt": {"beta": 0.95}, "b": 2})
    assert merged == {"a": 1, "b": 2, "opt": {"beta": 0.95, "eps": 1e-8}}
    assert table["opt"]["beta"] == 0.9  # the base is not changed


def test_flatten_lists_leaves_by_dotted_key() -> None:
    from gitmodel.metadata import flatten

    meta = {"params": {"lr": 0.1, "opt": {"name": "adam"}}, "message": "m", "data": {}, "tags": [1, 2]}
    assert flatten(meta) == {"data": {}, "message": "m", "params.lr": 0.1, "params.opt.name": "adam", "tags": [1, 2]}
    assert list(flatten(meta)) == sorted(flatten(meta))
