"""The command line loads a command's module only when that command runs, and still knows them all."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from conftest import Repo, make_safetensors
from gitmodel.cli import LazyGroup, cli

# What a command that reads no model (status of an empty repository) must not import.
HEAVY = ("numpy", "zstandard", "pyfastcdc", "yaml", "gitmodel.ingest", "gitmodel.materialize", "gitmodel.codecs")

_PROBE = """
import sys
from gitmodel.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("MODULES", " ".join(sorted(sys.modules)))
"""


def _modules_after(repo: Repo, *args: str) -> set[str]:
    cp = repo.run(sys.executable, "-c", _PROBE, *args)
    line = [ln for ln in cp.stdout.splitlines() if ln.startswith("MODULES ")][-1]
    return set(line.split()[1:])


def test_every_registered_command_loads_under_its_own_name() -> None:
    commands = cli.all_commands()
    assert isinstance(cli, LazyGroup)
    assert set(commands) == set(cli.lazy_commands) | set(cli.commands)
    for name, command in commands.items():
        assert isinstance(command, click.Command) and command.name == name
    # the commands every user starts with are there
    assert {"init", "add", "checkout", "status", "tag", "log", "gc", "fsck", "du", "hook"} <= set(commands)


def test_help_lists_every_visible_command(repo: Repo) -> None:
    out = repo.gm("-h").stdout
    listed = set(re.findall(r"^  ([a-z][a-z-]*)\s", out.split("Commands:", 1)[1], flags=re.M))
    visible = {name for name, c in cli.all_commands().items() if not c.hidden}
    assert listed == visible
    assert "hook" not in listed  # hidden: the installed hooks' entry point


def test_status_imports_only_what_it_needs(repo: Repo) -> None:
    loaded = _modules_after(repo, "status")
    assert "gitmodel.cli.status" in loaded
    others = {m for m in loaded if m.startswith("gitmodel.cli.")} - {"gitmodel.cli.status", "gitmodel.cli.progress"}
    assert others == set(), f"status loaded other command modules: {sorted(others)}"
    heavy = sorted(m for m in loaded for h in HEAVY if m == h or m.startswith(h + "."))
    assert heavy == [], f"status loaded heavy modules: {heavy}"


def test_a_command_runs_after_lazy_loading(repo: Repo) -> None:
    out = repo.gm("status").stdout
    assert "no models" in out
    assert "Usage: git model add" in repo.gm("add", "-h").stdout


def test_unknown_command_is_a_usage_error_without_traceback(repo: Repo) -> None:
    cp = repo.gm("no-such-command", check=False)
    assert cp.returncode == 2
    assert "Traceback" not in cp.stderr
    assert "No such command 'no-such-command'" in cp.stderr


def test_a_lazy_target_that_is_not_the_named_command_is_refused() -> None:
    group = LazyGroup(name="g")
    group.lazy("status", "gitmodel.cli.add:command")  # a registration line with a typo
    try:
        group.get_command(click.Context(group), "status")
    except RuntimeError as exc:
        assert "gitmodel.cli.add:command" in str(exc)
    else:
        raise AssertionError("a mismatched registration must fail loudly")


def test_import_gitmodel_is_cheap() -> None:
    cp = subprocess.run(
        [sys.executable, "-c", "import sys, gitmodel; print(' '.join(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True,
    )
    loaded = set(cp.stdout.split())
    assert not {"numpy", "zstandard", "gitmodel.ingest", "gitmodel.materialize"} & loaded


_TLS_PROBE = """
import os, sys
from gitmodel.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
import pygit2
print("LIBGIT2_CAFILE", pygit2.settings.ssl_cert_file)
print("ENV", os.environ.get("SSL_CERT_FILE", "<unset>"))
"""


def _a_ca_bundle() -> str:
    """A real CA bundle (libgit2 refuses an empty one)."""
    import os
    import ssl

    paths = ssl.get_default_verify_paths()
    for path in (os.environ.get("SSL_CERT_FILE"), paths.cafile, paths.openssl_cafile):
        if path and os.path.isfile(path):
            return path
    pytest.skip("no CA bundle on this machine")


def _tls_probe(repo: Repo, cert_file: str | None, cert_dir: str | None = None, *args: str) -> list[str]:
    env = dict(repo.env)
    env.pop("SSL_CERT_FILE", None)
    if cert_file is not None:
        env["SSL_CERT_FILE"] = cert_file
    if cert_dir is not None:
        env["SSL_CERT_DIR"] = cert_dir
    cp = subprocess.run([sys.executable, "-c", _TLS_PROBE, *(args or ("status",))], cwd=repo.path, env=env,
                        capture_output=True, text=True, check=True)
    return [ln for ln in cp.stdout.splitlines() if ln.startswith(("LIBGIT2_CAFILE ", "ENV "))]


def test_commands_import_pygit2_without_loading_the_ca_bundle_and_keep_ssl_cert_file(repo: Repo) -> None:
    # libgit2 parses a CA file when pygit2 is imported (a sixth of `status`); git model never
    # uses libgit2's TLS, so a command hides the file during that import, and only then
    bundle = _a_ca_bundle()  # exists: get_default_verify_paths would hand it to libgit2
    certs = repo.path / "certs"
    certs.mkdir()
    assert _tls_probe(repo, bundle, str(certs)) == ["LIBGIT2_CAFILE None", f"ENV {bundle}"]
    assert _tls_probe(repo, None, str(certs)) == ["LIBGIT2_CAFILE None", "ENV <unset>"]
    # a command whose module imports pygit2 only when it runs: `diff` of two pointers
    assert _tls_probe(repo, bundle, str(certs), "diff", "--stat") == ["LIBGIT2_CAFILE None", f"ENV {bundle}"]
    # without a certificate directory libgit2 would refuse the settings: the file stays
    assert _tls_probe(repo, bundle, str(repo.path / "none")) == [f"LIBGIT2_CAFILE {bundle}", f"ENV {bundle}"]


def test_the_python_api_imports_pygit2_as_it_is(repo: Repo) -> None:
    bundle = _a_ca_bundle()
    env = {**repo.env, "SSL_CERT_FILE": bundle, "SSL_CERT_DIR": str(repo.path)}
    code = "import gitmodel.gitrepo, pygit2; print(pygit2.settings.ssl_cert_file)"
    cp = subprocess.run([sys.executable, "-c", code], cwd=repo.path, env=env, capture_output=True, text=True, check=True)
    assert cp.stdout.strip() == bundle


def test_status_of_a_repository_without_models_imports_no_remote_module(repo: Repo) -> None:
    # remotes say which models' data they lack: without a model there is nothing to ask
    loaded = _modules_after(repo, "status")
    assert sorted(m for m in loaded if m.startswith("gitmodel.remote")) == []
    loaded = _modules_after(repo, "status", "--json")
    assert sorted(m for m in loaded if m.startswith("gitmodel.remote")) == []
    assert '"models": []' in repo.gm("status", "--json").stdout


_BUG_PROBE = """
import sys
import click
from gitmodel.cli import cli, main

cli.add_command(click.Command("boom", callback=lambda: 1 // 0))
main(sys.argv[1:])
"""


def test_a_bug_shows_a_traceback_only_with_debug(repo: Repo) -> None:
    # traceback is imported only on this path: it must still print one
    debug = repo.run(sys.executable, "-c", _BUG_PROBE, "--debug", "boom", check=False)
    assert debug.returncode == 3
    assert "Traceback (most recent call last)" in debug.stderr and "ZeroDivisionError" in debug.stderr
    plain = repo.run(sys.executable, "-c", _BUG_PROBE, "boom", check=False)
    assert plain.returncode == 3 and "Traceback" not in plain.stderr
    assert plain.stderr.strip().endswith("run again with 'git model --debug ...' for a traceback")


def test_status_asks_the_remote_modules_only_when_gitmodel_toml_names_a_remote(repo: Repo, tmp_path: Path) -> None:
    make_safetensors(repo.path / "m.safetensors", {"w": (4, 4)})
    repo.gm("add", "-q", "m.safetensors")
    loaded = _modules_after(repo, "status", "--json")
    assert sorted(m for m in loaded if m.startswith("gitmodel.remote")) == []
    assert "not_on_remotes" not in repo.gm("status", "--json").stdout
    repo.gm("remote", "add", "origin", str(tmp_path / "store"))
    assert "gitmodel.remote.ops" in _modules_after(repo, "status", "--json")
    doc = json.loads(repo.gm("status", "--json").stdout)
    assert doc["models"][0]["not_on_remotes"] == ["origin"]  # never pushed
    assert "[not on origin]" in repo.gm("status").stdout
