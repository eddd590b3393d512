"""`git model install-hooks` and `git model hook NAME` (what the installed hook scripts run)."""

from __future__ import annotations

import sys

import click

from gitmodel import api


@click.command("install-hooks")
@click.option("--uninstall", is_flag=True, help="Remove git-model's hooks and restore the ones they chained.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
def install_command(uninstall: bool, quiet: bool) -> None:
    """Install pre-commit, pre-push, post-checkout and post-merge hooks, keeping (and chaining) yours."""
    from gitmodel import hooks
    from gitmodel.gitrepo import GitRepo

    git = GitRepo()
    if uninstall:
        undone = hooks.uninstall(git)
        for line in undone.skipped:
            click.echo(f"git model: warning: {line}", err=True)
        if not quiet:
            for name in undone.removed:
                click.echo(f"removed {name}")
            for name in undone.restored:
                click.echo(f"restored your {name}")
            if not undone.removed and not undone.restored:
                click.echo("no git-model hooks were installed")
        return
    api.Workspace()  # refuse before writing hooks into a repository git-model was never set up in
    done = hooks.install(git)
    for line in done.skipped:
        click.echo(f"git model: warning: {line}", err=True)
    if not quiet:
        for name in done.installed:
            chained = f" (your {name} runs first)" if name in done.chained else ""
            click.echo(f"installed {name}{chained}")
        if done.unchanged and not done.installed:
            click.echo("git-model hooks already installed")
        if done.installed and "post-checkout" in done.installed:
            click.echo("model files now follow 'git checkout' and 'git merge'; 'git config model.autoCheckout false' turns that off")
    if done.skipped:
        sys.exit(1)


@click.command("hook", hidden=True)
@click.argument("name", type=click.Choice(["pre-commit", "pre-push", "post-checkout", "post-merge"]))
@click.argument("args", nargs=-1)
@click.pass_context
def hook_command(ctx: click.Context, name: str, args: tuple[str, ...]) -> None:
    """Run what the installed hook NAME does (called by the scripts in .git/hooks)."""
    from gitmodel import hooks
    from gitmodel.config import CONFIG_NAME
    from gitmodel.errors import GitModelError
    from gitmodel.gitrepo import GitRepo

    if name.startswith("pre-") and not (GitRepo().workdir / CONFIG_NAME).is_file():
        return  # a commit or branch from before 'git model init': nothing of ours to check
    if name == "pre-commit":
        from gitmodel.check import check_staged

        problems = check_staged(api.Workspace())
        for p in problems:
            click.echo(str(p), err=True)
        if problems:
            click.echo("git model: commit refused (pre-commit hook); fix the above, or 'git commit --no-verify' to skip", err=True)
            ctx.exit(1)
        return
    if name == "pre-push":
        lines = sys.stdin.read().splitlines()  # "<local ref> <local sha> <remote ref> <remote sha>"
        messages = hooks.pre_push_problems(api.Workspace(), lines)
        for line in messages:
            click.echo(line, err=True)
        if messages:
            click.echo("git model: push refused (pre-push hook)", err=True)
            ctx.exit(1)
        return
    # post-checkout OLD NEW FLAG (FLAG 1: a branch switch; 0: files only) and post-merge SQUASH
    if name == "post-checkout" and (len(args) < 3 or args[2] != "1"):
        return
    ws = api.Workspace(require_init=False)
    if not hooks.auto_checkout_enabled(ws.git):
        return
    old, new = (args[0], args[1]) if name == "post-checkout" else ("ORIG_HEAD", "HEAD")
    from gitmodel.remote.ops import fetch_for_checkout  # the data, from the remote if one is configured

    fetch_problem = fetch_for_checkout(ws, old, new)
    if fetch_problem:
        click.echo(f"git model: {fetch_problem}", err=True)
    try:
        result = hooks.materialize_changed(ws, old, new)
    except GitModelError as exc:  # the checkout itself is done; say why the weights did not follow
        click.echo(f"git model: {exc}", err=True)
        return
    if result is None:
        return
    for rel in result.restored:
        click.echo(f"git model: restored {rel}", err=True)
    for rel in result.removed:
        click.echo(f"git model: removed {rel} (not in this version)", err=True)
    for line in result.errors:
        click.echo(f"git model: {line}", err=True)
