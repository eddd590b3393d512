"""Pointer files: one valid encoding, lossless round trips, and every way decode refuses a bad one."""

from __future__ import annotations

import sys
from typing import Any

import pytest
import tomli_w

from gitmodel.errors import BadPointerError, GitModelError, NotAPointerError, UnsupportedVersionError
from gitmodel.pointer import FileEntry, Pointer, TensorSummary, decode

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

WHERE = "models/m/model.safetensors.model.toml"
D1 = "blake3:" + "1" * 64
D2 = "blake3:" + "2" * 64
X1 = "xxh3:" + "a" * 32
X2 = "xxh3:" + "b" * 32


def _file(path: str = "model.safetensors", tensors: dict[str, TensorSummary] | None = None, **kw: Any) -> FileEntry:
    args: dict[str, Any] = dict(path=path, size=100, digest=D1, manifest=D2, format="safetensors")
    args.update(kw)
    return FileEntry(tensors=tensors or {}, **args)


def _pointer(**kw: Any) -> Pointer:
    tensors = {
        "weight": TensorSummary("F32", (4, 4), X1),
        "bias": TensorSummary("F32", (4,), X2),
    }
    args: dict[str, Any] = dict(name="m", kind="file", files=(_file(tensors=tensors),), metadata={"lr": 0.001})
    args.update(kw)
    return Pointer(**args)


def test_exact_encoding() -> None:
    text = _pointer().encode().decode()
    assert text == (
        "# git-model pointer: the model's bytes are in the git-model store.\n"
        "# Restore them with 'git model checkout'; spec: docs/pointer-format.md\n"
        "version = 1\n"
        'name = "m"\n'
        'kind = "file"\n'
        "size = 100\n"
        "\n"
        "[[files]]\n"
        'path = "model.safetensors"\n'
        "size = 100\n"
        f'digest = "{D1}"\n'
        f'manifest = "{D2}"\n'
        'format = "safetensors"\n'
        "\n"
        "[files.tensors]\n"
        f'"bias" = {{ dtype = "F32", shape = [4], digest = "{X2}" }}\n'
        f'"weight" = {{ dtype = "F32", shape = [4, 4], digest = "{X1}" }}\n'
        "\n"
        "[metadata]\n"
        "lr = 0.001\n"
    )


def test_round_trip() -> None:
    p = _pointer()
    back = decode(p.encode(), WHERE)
    assert back == p
    assert back.encode() == p.encode()
    assert back.size == 100


def test_encoding_ignores_insertion_order() -> None:
    t = {f"layer.{i}": TensorSummary("F16", (i, 2), "xxh3:" + f"{i:032x}") for i in range(30)}
    reversed_t = dict(reversed(list(t.items())))
    files_a = (
        _file("bert/a.bin", tensors=t, size=5),
        _file("bert/b.bin", size=7, format="opaque"),
        _file("bert/Z.bin", size=1, format="zip"),
    )
    files_b = (
        files_a[1],
        _file("bert/a.bin", tensors=reversed_t, size=5),
        files_a[2],
    )
    meta_a = {"b": 1, "a": {"y": [1, 2], "x": "s"}, "c": [{"q": 1, "p": 2}]}
    meta_b = {"c": [{"p": 2, "q": 1}], "a": {"x": "s", "y": [1, 2]}, "b": 1}
    a = Pointer("bert", "directory", files_a, meta_a).encode()
    b = Pointer("bert", "directory", files_b, meta_b).encode()
    assert a == b
    text = a.decode()
    # files sorted bytewise: "Z" < "a" < "b"
    assert text.index('"bert/Z.bin"') < text.index('"bert/a.bin"') < text.index('"bert/b.bin"')
    back = decode(a, "models/bert.model.toml")
    assert back.encode() == a


ODD_NAMES = [
    'quote"in"name',
    "back\\slash\\",
    "unicode é 中文 🚀",
    "tab\there",
    "new\nline",
    "nul\x00byte",
    "del\x7fchar",
    "esc\x1b[31m",
    "carriage\rreturn",
    "",
    "'single'",
    "trailing space ",
    "= { dtype",
]


def test_odd_tensor_names_round_trip_through_tomllib() -> None:
    tensors = {name: TensorSummary("F32", (1,), "xxh3:" + f"{i:032x}") for i, name in enumerate(ODD_NAMES)}
    p = _pointer(files=(_file(tensors=tensors, warning='odd "warning"\\ with\ncontrol\x01chars é'),))
    raw = p.encode()
    doc = tomllib.loads(raw.decode("utf-8"))
    assert set(doc["files"][0]["tensors"]) == set(ODD_NAMES)
    assert doc["files"][0]["warning"] == 'odd "warning"\\ with\ncontrol\x01chars é'
    back = decode(raw, WHERE)
    assert back == p
    # one line per tensor, whatever the name holds
    tensor_lines = raw.decode().split("[files.tensors]\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(tensor_lines) == len(ODD_NAMES)
    assert "\x00" not in raw.decode() and "\x7f" not in raw.decode() and "\r" not in raw.decode()


def test_odd_file_paths_round_trip() -> None:
    files = (_file('m/quo"te', size=1), _file("m/back slash é", size=2), _file("m/sub/dir/x.bin", size=3))
    p = Pointer("m", "directory", files)
    back = decode(p.encode(), "models/m.model.toml")
    assert back.files == tuple(sorted(files, key=lambda f: f.path.encode()))  # decoded in file order
    assert back.encode() == p.encode()


def test_warning_is_written_only_when_present() -> None:
    plain = _pointer().encode().decode()
    assert "warning" not in plain
    warned = _pointer(files=(_file(format="opaque", warning="safetensors header is damaged"),)).encode().decode()
    assert 'format = "opaque"\nwarning = "safetensors header is damaged"\n' in warned


def test_metadata_is_written_by_tomli_w_and_read_back() -> None:
    meta = {
        "metrics": {"accuracy": 0.9312, "loss": 1.5e-7},
        "hyper": {"lr": 0.0001, "batch": 32, "layers": [1, 2, 3], "schedule": "cosine"},
        "lineage": {"data": "s3://bucket/train", "commit": "abc123", "parents": [{"name": "base", "step": 10}]},
        "notes": 'multi\nline "quoted"',
        "flag": True,
    }
    p = _pointer(metadata=meta)
    raw = p.encode()
    expected_tail = tomli_w.dumps(
        {
            "metadata": {
                "flag": True,
                "hyper": {"batch": 32, "layers": [1, 2, 3], "lr": 0.0001, "schedule": "cosine"},
                "lineage": {"commit": "abc123", "data": "s3://bucket/train", "parents": [{"name": "base", "step": 10}]},
                "metrics": {"accuracy": 0.9312, "loss": 1.5e-7},
                "notes": 'multi\nline "quoted"',
            }
        }
    )
    assert raw.decode().endswith("\n\n" + expected_tail)
    back = decode(raw, WHERE)
    assert back.metadata == meta
    assert back.encode() == raw


def test_no_metadata_no_table() -> None:
    raw = _pointer(metadata={}).encode().decode()
    assert "[metadata]" not in raw
    assert raw.endswith(f'digest = "{X1}" }}\n')


def test_directory_pointer() -> None:
    files = (_file("bert/config.json", size=10, format="opaque"), _file("bert/model.safetensors", size=90))
    p = Pointer("bert", "directory", files)
    assert decode(p.encode(), "models/bert.model.toml") == p
    assert p.size == 100


def test_encoding_is_utf8_with_lf_and_final_newline() -> None:
    raw = _pointer(name="m").encode()
    assert raw.endswith(b"\n") and not raw.endswith(b"\n\n")
    assert b"\r\n" not in raw
    raw.decode("utf-8")


# -- decode refuses ------------------------------------------------------------------------


def _doc() -> dict[str, Any]:
    return tomllib.loads(_pointer().encode().decode())


def _bad(doc: dict[str, Any], where: str = WHERE) -> BadPointerError:
    with pytest.raises(BadPointerError) as exc:
        decode(tomli_w.dumps(doc).encode(), where)
    err = exc.value
    assert err.path == where
    assert str(err) == f"{where}: broken pointer: {err.problem}"
    return err


@pytest.mark.parametrize("key", ["name", "kind", "size"])
def test_missing_top_level_key(key: str) -> None:
    doc = _doc()
    del doc[key]
    assert _bad(doc).problem == f"'{key}' is missing"


@pytest.mark.parametrize("key", ["path", "size", "digest", "manifest", "format"])
def test_missing_file_key(key: str) -> None:
    doc = _doc()
    del doc["files"][0][key]
    assert _bad(doc).problem == f"'files[0].{key}' is missing"


@pytest.mark.parametrize(
    "key, value, problem",
    [
        ("version", "1", "'version' must be an integer"),
        ("version", True, "'version' must be an integer"),
        ("name", 5, "'name' must be a string"),
        ("kind", ["file"], "'kind' must be a string"),
        ("size", "100", "'size' must be an integer"),
        ("size", True, "'size' must be an integer"),
        ("size", 1.0, "'size' must be an integer"),
        ("files", {}, "'files' must be a non-empty array of tables"),
        ("files", [], "'files' must be a non-empty array of tables"),
        ("metadata", 3, "'metadata' must be a table"),
    ],
)
def test_wrong_top_level_type(key: str, value: Any, problem: str) -> None:
    doc = _doc()
    doc[key] = value
    assert _bad(doc).problem == problem


@pytest.mark.parametrize(
    "key, value, problem",
    [
        ("size", "100", "'files[0].size' must be an integer"),
        ("digest", 7, "'files[0].digest' must be a string"),
        ("path", 1, "'files[0].path' must be a string"),
        ("warning", 1, "files[0].warning must be a string"),
        ("tensors", [1], "files[0].tensors must be a table"),
        ("size", -1, "files[0].size is negative"),
    ],
)
def test_wrong_file_field(key: str, value: Any, problem: str) -> None:
    doc = _doc()
    doc["files"][0][key] = value
    if key == "size" and isinstance(value, int):
        doc["size"] = value
    assert _bad(doc).problem == problem


@pytest.mark.parametrize(
    "value",
    [
        "sha256:" + "1" * 64,
        "blake3:" + "1" * 63,
        "blake3:" + "1" * 65,
        "blake3:" + "A" * 64,
        "blake3:" + "g" * 64,
        "1" * 64,
        "blake3: " + "1" * 63,
    ],
)
@pytest.mark.parametrize("key", ["digest", "manifest"])
def test_bad_file_digests(key: str, value: str) -> None:
    doc = _doc()
    doc["files"][0][key] = value
    assert _bad(doc).problem == f"files[0].{key} {value!r} is not 'blake3:' and 64 hex digits"


@pytest.mark.parametrize("value", ["xxh3:" + "a" * 31, "xxh3:" + "A" * 32, "blake3:" + "a" * 64, "a" * 32])
def test_bad_tensor_digest(value: str) -> None:
    doc = _doc()
    doc["files"][0]["tensors"]["bias"]["digest"] = value
    assert _bad(doc).problem == f"files[0].tensors.'bias'.digest {value!r} is not 'xxh3:' and 32 hex digits"


@pytest.mark.parametrize(
    "edit, problem",
    [
        (lambda t: t.pop("dtype"), "'files[0].tensors.'bias'.dtype' is missing"),
        (lambda t: t.pop("digest"), "'files[0].tensors.'bias'.digest' is missing"),
        (lambda t: t.update(shape=[-1]), "files[0].tensors.'bias'.shape must be an array of non-negative integers"),
        (lambda t: t.update(shape="4"), "files[0].tensors.'bias'.shape must be an array of non-negative integers"),
        (lambda t: t.pop("shape"), "files[0].tensors.'bias'.shape must be an array of non-negative integers"),
        (lambda t: t.update(dtype=4), "'files[0].tensors.'bias'.dtype' must be a string"),
    ],
)
def test_bad_tensor_entry(edit: Any, problem: str) -> None:
    doc = _doc()
    edit(doc["files"][0]["tensors"]["bias"])
    assert _bad(doc).problem == problem


def test_tensor_entry_not_a_table() -> None:
    doc = _doc()
    doc["files"][0]["tensors"]["bias"] = "F32"
    assert _bad(doc).problem == "files[0].tensors.'bias' must be an inline table"


@pytest.mark.parametrize("path", ["../model.safetensors", "a/../b", "/abs/x", "./x", "x/", "a//b", "a\\b", ""])
def test_paths_that_escape_are_refused(path: str) -> None:
    doc = _doc()
    doc["kind"] = "directory"
    doc["files"][0]["path"] = path
    assert _bad(doc, "models/m.model.toml").problem == f"files[0].path {path!r} is not a clean relative path"


def test_file_kind_path_must_be_the_model_file() -> None:
    doc = _doc()
    doc["files"][0]["path"] = "other.safetensors"
    assert _bad(doc).problem == "files[0].path 'other.safetensors' is not the model file 'model.safetensors'"


@pytest.mark.parametrize("path", ["other/x.bin", "m", "mm/x.bin"])
def test_directory_paths_must_be_inside_the_model(path: str) -> None:
    doc = _doc()
    doc["kind"] = "directory"
    doc["files"][0]["path"] = path
    problem = _bad(doc, "models/m.model.toml").problem
    assert problem == f"files[0].path {path!r} is not inside the model directory 'm'"


def test_file_kind_with_two_files() -> None:
    doc = _doc()
    doc["files"].append(dict(doc["files"][0]))
    doc["size"] = 200
    assert _bad(doc).problem == "a 'file' model must have exactly one [[files]] entry"


def test_duplicate_paths() -> None:
    doc = _doc()
    doc["kind"] = "directory"
    doc["files"][0]["path"] = "m/x"
    doc["files"].append(dict(doc["files"][0]))
    doc["size"] = 200
    assert _bad(doc, "models/m.model.toml").problem == "two [[files]] entries have the same path"


def test_size_mismatch() -> None:
    doc = _doc()
    doc["size"] = 101
    assert _bad(doc).problem == "'size' is not the sum of the files' sizes"


@pytest.mark.parametrize("name", ["-bad", ".hidden", "has space", "x" * 101, "", "ünï"])
def test_bad_name(name: str) -> None:
    doc = _doc()
    doc["name"] = name
    assert _bad(doc).problem == f"name {name!r} is not a valid model name"


def test_name_of_100_characters_is_fine() -> None:
    doc = _doc()
    doc["name"] = "a" * 100
    assert decode(tomli_w.dumps(doc).encode(), WHERE).name == "a" * 100


def test_bad_kind() -> None:
    doc = _doc()
    doc["kind"] = "folder"
    assert _bad(doc).problem == "kind must be 'file' or 'directory', not 'folder'"


def test_files_entry_not_a_table() -> None:
    doc = _doc()
    doc["files"] = [1]
    assert _bad(doc).problem == "files[0] must be a table"


def test_version_too_new() -> None:
    doc = _doc()
    doc["version"] = 2
    with pytest.raises(UnsupportedVersionError) as exc:
        decode(tomli_w.dumps(doc).encode(), WHERE)
    assert str(exc.value) == f"{WHERE}: pointer version 2 needs a newer git-model: pip install -U git-model"


def test_version_too_old() -> None:
    doc = _doc()
    doc["version"] = 0
    assert _bad(doc).problem == "unknown pointer version 0"


@pytest.mark.parametrize(
    "raw",
    [
        b"\x89PNG\r\n\x1a\n\0\0binary",
        b"\xff\xfe not utf-8",
        b"this is = not = toml",
        b"[unclosed\n",
        b'name = "m"\nkind = "file"\n',
        b"",
        b"{\n  \"version\": 1\n}\n",
    ],
)
def test_not_a_pointer(raw: bytes) -> None:
    with pytest.raises(NotAPointerError) as exc:
        decode(raw, WHERE)
    assert str(exc.value).startswith(f"{WHERE} is not a git-model pointer (")
    assert not isinstance(exc.value, BadPointerError)


def test_broken_and_not_a_pointer_are_distinct() -> None:
    assert not issubclass(NotAPointerError, BadPointerError)
    assert not issubclass(BadPointerError, NotAPointerError)
    for cls in (NotAPointerError, BadPointerError, UnsupportedVersionError):
        assert issubclass(cls, GitModelError)


def test_unknown_keys_are_accepted() -> None:
    doc = _doc()
    doc["future_key"] = "x"
    doc["files"][0]["future"] = 1
    doc["metadata"]["anything"] = {"nested": [1, 2]}
    back = decode(tomli_w.dumps(doc).encode(), WHERE)
    assert back.metadata["anything"] == {"nested": [1, 2]}


def test_strings_are_quoted_as_toml_basic_strings_escaping_only_what_must_be() -> None:
    from gitmodel.pointer import _str

    for ch in map(chr, range(0x3000)):
        value = f"a{ch}b"
        if ch == '"':
            expected = '"a\\"b"'
        elif ch == "\\":
            expected = '"a\\\\b"'
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            expected = f'"a\\u{ord(ch):04x}b"'
        else:
            expected = f'"a{ch}b"'
        assert _str(value) == expected
        assert tomllib.loads(f"k = {expected}")["k"] == value
