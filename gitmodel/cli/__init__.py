"""The `git model` command line: a thin click layer over gitmodel.api.

A command is registered in `_register` by one line, `lazy("NAME", "gitmodel.cli.MODULE:ATTRIBUTE")`;
its module is imported only when that command runs (or `-h` lists them all), so keep heavy
imports out of other modules' top level too. tests/cli/test_lazy_cli.py checks every line.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from gitmodel import __version__
from gitmodel.errors import GitModelError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130

# True once main() runs: this process is a `git model` command, which never uses libgit2's
# network transports (gitmodel.gitrepo then imports pygit2 without the CA bundle)
running = False


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use.

    `git model status` then imports the status module and what it needs, not every
    command's dependencies; `git model -h` and the man page load them all to list them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands: dict[str, str] = {}  # command name -> "module:attribute"

    def lazy(self, name: str, target: str) -> None:
        """Register command `name`, the click command at `target` ("package.module:attribute")."""
        self.lazy_commands[name] = target

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(self.lazy_commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            module_name, _, attribute = self.lazy_commands[cmd_name].partition(":")
            command = getattr(importlib.import_module(module_name), attribute)
            if not isinstance(command, click.Command) or command.name != cmd_name:
                raise RuntimeError(f"{self.lazy_commands[cmd_name]} is not the command {cmd_name!r}")
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def all_commands(self) -> dict[str, click.Command]:
        """Every command, loaded: for the man page and the tests."""
        ctx = click.Context(self)
        out = {}
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            assert command is not None
            out[name] = command
        return out


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="git-model")
@click.option("--debug", is_flag=True, help="Show a traceback for unexpected errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Version machine-learning checkpoints in Git.

    Model files live in a deduplicating chunk store outside Git; Git versions a small
    TOML pointer beside each model.
    """
    ctx.obj = {"debug": debug}


def _register() -> None:
    # one line per command: its name, and the module and attribute that define it
    lazy = cli.lazy
    lazy("init", "gitmodel.cli.init:command")
    lazy("add", "gitmodel.cli.add:command")
    lazy("checkout", "gitmodel.cli.checkout:command")
    lazy("status", "gitmodel.cli.status:command")
    lazy("check", "gitmodel.cli.check:command")
    lazy("gc", "gitmodel.cli.gc:command")
    lazy("fsck", "gitmodel.cli.fsck:command")
    lazy("du", "gitmodel.cli.du:command")
    lazy("install-hooks", "gitmodel.cli.hooks:install_command")
    lazy("hook", "gitmodel.cli.hooks:hook_command")
    lazy("tag", "gitmodel.cli.tag:tag")
    lazy("annotate", "gitmodel.cli.tag:annotate")
    lazy("promote", "gitmodel.cli.stages:promote")
    lazy("rollback", "gitmodel.cli.stages:rollback")
    lazy("deprecate", "gitmodel.cli.stages:deprecate")
    lazy("stages", "gitmodel.cli.stages:stages")
    lazy("log", "gitmodel.cli.log:log")
    lazy("show", "gitmodel.cli.log:show")
    lazy("ls", "gitmodel.cli.log:ls")
    lazy("audit", "gitmodel.cli.audit:command")
    lazy("remote", "gitmodel.cli.remote:remote_group")  # remote, push, fetch, pull: docs/remotes.md
    lazy("push", "gitmodel.cli.remote:push_command")
    lazy("fetch", "gitmodel.cli.remote:fetch_command")
    lazy("pull", "gitmodel.cli.remote:pull_command")
    lazy("diff", "gitmodel.cli.diff:command")  # review: docs/review.md
    lazy("textconv", "gitmodel.cli.diff:textconv")
    lazy("compare", "gitmodel.cli.compare:command")
    lazy("runs", "gitmodel.cli.runs:runs")  # training runs saved from Python (gitmodel.Run)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn every failure into one line and an exit code."""
    global running
    running = True
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        # make_context + invoke instead of cli.main: click's own handler would print a
        # blank line on Ctrl-C and catch errors before we can give them one line each
        with cli.make_context("git model", list(args)) as ctx:
            cli.invoke(ctx)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except GitModelError as exc:
        _fail(f"error: {exc}", EXIT_ERROR)
    except click.exceptions.Abort:
        _fail("interrupted", EXIT_INTERRUPTED)
    except click.UsageError as exc:
        _usage_error(exc)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        sys.exit(EXIT_ERROR)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"error: {where}{exc.strerror or exc}", EXIT_ERROR)
    except Exception as exc:  # anything else is a bug in git-model
        if debug:
            import traceback  # only here: most commands never import it

            traceback.print_exc()
        _fail(
            f"internal error (a bug in git-model {__version__}): {type(exc).__name__}: {exc}"
            + ("" if debug else "; run again with 'git model --debug ...' for a traceback"),
            EXIT_BUG,
        )
    sys.exit(0)


def _usage_error(exc: click.UsageError) -> None:
    """Click's usage error, but suggesting `-h`: Git turns `git model --help` into `man git-model`."""
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):  # bare `git model`: the help itself
        exc.show()
        sys.exit(exc.exit_code)
    if exc.ctx is not None:
        click.echo(exc.ctx.get_usage(), err=True)
        click.echo(f"Try '{exc.ctx.command_path} -h' for help.\n", err=True)
    click.echo(f"Error: {exc.format_message()}", err=True)
    sys.exit(EXIT_USAGE)


def _fail(message: str, code: int) -> None:
    click.echo(f"git model: {message}", err=True)
    sys.exit(code)
