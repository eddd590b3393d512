"""Shared fixtures: temporary Git repositories driven by the real `git` and `git model`."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import pytest

Arg = Union[str, Path]
Shape = tuple[int, ...]
TensorSpec = Union[Shape, np.ndarray]

# Git variables from the caller's shell would point our subprocesses at another repository.
_GIT_LEAKS = (
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
    "GIT_CONFIG", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT", "GIT_NAMESPACE", "GIT_PREFIX",
    "GIT_CEILING_DIRECTORIES", "GIT_ALTERNATE_OBJECT_DIRECTORIES",
)


def find_git_model() -> str:
    """The installed `git-model` console script: on PATH, or beside this interpreter."""
    search = os.pathsep.join([os.environ.get("PATH", ""), str(Path(sys.executable).parent)])
    found = shutil.which("git-model", path=search)
    if found is None:
        pytest.fail(
            "the 'git-model' console script is not installed (not on PATH nor beside "
            f"{sys.executable}); run 'pip install -e .' in the project first",
            pytrace=False,
        )
    return found


def make_env(home: Path) -> dict[str, str]:
    """An environment where git finds `git-model`, and no user or system git config leaks in."""
    env = {k: v for k, v in os.environ.items() if k not in _GIT_LEAKS}
    script_dir = str(Path(find_git_model()).parent)
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        PATH=os.pathsep.join([script_dir, env.get("PATH", "")]),
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Test Author",
        GIT_AUTHOR_EMAIL="author@example.com",
        GIT_COMMITTER_NAME="Test Committer",
        GIT_COMMITTER_EMAIL="committer@example.com",
        GIT_TERMINAL_PROMPT="0",
        LC_ALL="C",
        LANG="C",
    )
    env.pop("GIT_CONFIG_GLOBAL", None)
    return env


def run(
    args: Sequence[Arg],
    cwd: Path,
    env: Mapping[str, str],
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command; with `check`, fail the test (showing its output) unless it exits 0."""
    cp = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=dict(env), capture_output=True, text=True,
        stdin=subprocess.DEVNULL,
    )
    if check and cp.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited {cp.returncode}\n"
            f"--- stdout\n{cp.stdout}--- stderr\n{cp.stderr}",
            pytrace=False,
        )
    return cp


def assert_one_line_error(cp: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """`git model` failed as a user expects: exit `code`, one stderr line, no traceback."""
    assert cp.returncode == code, f"exit {cp.returncode}, expected {code}\nstdout: {cp.stdout}\nstderr: {cp.stderr}"
    assert "Traceback" not in cp.stderr and "Traceback" not in cp.stdout, cp.stderr
    lines = cp.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{cp.stderr}"
    assert lines[0].startswith("git model: "), lines[0]
    return lines[0]


@dataclass
class Repo:
    """A temporary repository and the environment its commands run in."""

    path: Path
    env: dict[str, str]

    def run(self, *args: Arg, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return run(args, cwd or self.path, self.env, check)

    def git(self, *args: Arg, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return self.run("git", *args, check=check, cwd=cwd)

    def gm(self, *args: Arg, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """`git model ARGS...`, through git, as a user types it."""
        return self.run("git", "model", *args, check=check, cwd=cwd)

    def gm_fails(self, *args: Arg, code: int = 1, cwd: Path | None = None) -> str:
        """Run `git model ARGS...`, expect a one-line error with exit `code`; return that line."""
        return assert_one_line_error(self.gm(*args, check=False, cwd=cwd), code)

    def commit(self, message: str = "commit") -> None:
        self.git("commit", "-q", "-m", message)

    def porcelain(self) -> list[str]:
        out = self.git("status", "--porcelain", "--untracked-files=all").stdout
        return [line for line in out.splitlines() if line]

    def staged(self) -> set[str]:
        return set(self.git("diff", "--cached", "--name-only").stdout.split())

    def tracked(self) -> set[str]:
        return set(self.git("ls-files").stdout.split())

    @property
    def store(self) -> Path:
        """The default store: model/ in the git dir shared by every worktree."""
        common = self.git("rev-parse", "--path-format=absolute", "--git-common-dir").stdout.strip()
        return Path(common) / "model"

    def objects(self) -> set[str]:
        return object_files(self.store)

    def pointer(self, model_rel: str) -> str:
        return (self.path / (model_rel + ".model.toml")).read_text(encoding="utf-8")


def object_files(store: Path) -> set[str]:
    """Every object, pack and index file in a store, as paths relative to the store."""
    return {p.relative_to(store).as_posix() for sub in ("objects", "packs", "index")
            for p in (store / sub).rglob("*") if p.is_file()}


def new_repo(path: Path, home: Path, init_model: bool = True) -> Repo:
    """`git init`, an initial empty commit, then (by default) `git model init`."""
    path.mkdir(parents=True, exist_ok=True)
    repo = Repo(path, make_env(home))
    repo.git("init", "-q", "-b", "main")
    repo.git("commit", "-q", "--allow-empty", "-m", "initial")
    if init_model:
        repo.gm("init", "-q")
    return repo


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return make_env(tmp_path / "home")


# Starting `git model` costs a few hundred milliseconds; each fixture repository is built once
# per session and copied (a plain repository holds no absolute paths, so a copy is a repo).
@pytest.fixture(scope="session")
def _templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("templates")
    home = base / "home"
    plain = new_repo(base / "plain", home, init_model=False)
    initialized = new_repo(base / "initialized", home)
    committed = new_repo(base / "committed", home)
    committed.commit("git model init")
    return {"plain": plain.path, "initialized": initialized.path, "committed": committed.path}


def _copy_template(templates: dict[str, Path], which: str, tmp_path: Path) -> Repo:
    target = tmp_path / "repo"
    shutil.copytree(templates[which], target, symlinks=True)
    repo = Repo(target, make_env(tmp_path / "home"))
    repo.git("update-index", "-q", "--refresh", check=False)  # new inodes: refresh stat info
    return repo


@pytest.fixture
def repo(_templates: dict[str, Path], tmp_path: Path) -> Repo:
    """A repository with one empty commit, set up with `git model init` (its files staged)."""
    return _copy_template(_templates, "initialized", tmp_path)


@pytest.fixture
def committed_repo(_templates: dict[str, Path], tmp_path: Path) -> Repo:
    """`repo` with the files `git model init` staged already committed: a clean index."""
    return _copy_template(_templates, "committed", tmp_path)


@pytest.fixture
def plain_repo(_templates: dict[str, Path], tmp_path: Path) -> Repo:
    """A repository with one empty commit, without `git model init`."""
    return _copy_template(_templates, "plain", tmp_path)


# -- model files --------------------------------------------------------------------------
def make_safetensors(path: Path, tensors: Mapping[str, TensorSpec], seed: int = 0) -> dict[str, np.ndarray]:
    """Write a real safetensors file; a shape gets random float32 values from `seed`."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    arrays = {
        name: (spec if isinstance(spec, np.ndarray) else rng.standard_normal(spec, dtype=np.float32))
        for name, spec in tensors.items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(arrays, str(path))
    return arrays


SMALL_TENSORS: dict[str, Shape] = {
    "embed.weight": (256, 64),
    "layer0.bias": (64,),
    "layer0.weight": (64, 64),
    "layer1.weight": (64, 64),
    "norm.weight": (64,),
}


def make_torch_checkpoint(path: Path, seed: int = 0) -> None:
    """A real PyTorch zip checkpoint: torch.save of a small state_dict."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    state = {
        "linear.weight": torch.randn(32, 16, generator=gen),
        "linear.bias": torch.randn(32, generator=gen),
        "embedding.weight": torch.randn(100, 16, generator=gen),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)


def make_npz(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {
        "weights": rng.standard_normal((16, 8)).astype(np.float32),
        "steps": np.arange(10, dtype=np.int64),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, weights=arrays["weights"], steps=arrays["steps"])
    return arrays


HF_FILES = (
    "config.json",
    "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
)


def make_hf_model(directory: Path, seed: int = 0) -> list[str]:
    """A Hugging Face-style directory model; returns its file names, sorted."""
    directory.mkdir(parents=True, exist_ok=True)
    config = {"architectures": ["TinyForCausalLM"], "hidden_size": 32, "num_hidden_layers": 2, "vocab_size": 128}
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    vocab = {f"tok{i}": i for i in range(128)}
    tokenizer = {"version": "1.0", "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "tok0"}}
    (directory / "tokenizer.json").write_text(json.dumps(tokenizer) + "\n")
    shard1 = {"model.embed_tokens.weight": (128, 32), "model.layers.0.mlp.weight": (32, 32)}
    shard2 = {"model.layers.1.mlp.weight": (32, 32), "lm_head.weight": (128, 32)}
    make_safetensors(directory / HF_FILES[1], shard1, seed)
    make_safetensors(directory / HF_FILES[2], shard2, seed + 1)
    weight_map = {name: HF_FILES[1] for name in shard1} | {name: HF_FILES[2] for name in shard2}
    size = sum((directory / f).stat().st_size for f in HF_FILES[1:3])
    index = {"metadata": {"total_size": size}, "weight_map": dict(sorted(weight_map.items()))}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    return sorted(HF_FILES)


# -- comparing ----------------------------------------------------------------------------
def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def snapshot(root: Path) -> dict[str, str]:
    """Relative path → sha256 of every file under `root` (or of `root` itself if a file)."""
    if root.is_file():
        return {root.name: sha256(root)}
    return {p.relative_to(root).as_posix(): sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}


def tensor_lines(pointer_text: str) -> dict[str, str]:
    """Tensor name → its whole line in the pointer's [files.tensors] tables."""
    out: dict[str, str] = {}
    for line in pointer_text.splitlines():
        if line.startswith('"') and "dtype = " in line:
            out[line.split(" = ", 1)[0]] = line
    return out


# -- slow tests and long runs -------------------------------------------------------------------
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: a test of full-size data; run with GITMODEL_SLOW=1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`@pytest.mark.slow` tests run only with GITMODEL_SLOW=1 (in any test directory)."""
    if os.environ.get("GITMODEL_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="full-size test: run with GITMODEL_SLOW=1")
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(skip)
