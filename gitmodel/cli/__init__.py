"""The `git model` command line: a thin click layer over gitmodel.api."""

from __future__ import annotations

import sys
import traceback

import click

from gitmodel import __version__
from gitmodel.errors import GitModelError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    from gitmodel.cli import add, audit, check, checkout, du, fsck, gc, hooks, init, log, stages, status, tag

    for module in (init, add, checkout, status, check, gc, fsck, du):
        cli.add_command(module.command)
    cli.add_command(hooks.install_command)
    cli.add_command(hooks.hook_command)
    for family in (tag, stages, log, audit):  # versions, stages and the audit trail
        for command in family.commands:
            cli.add_command(command)
    from gitmodel.cli import runs  # training runs saved from Python (gitmodel.Run)

    cli.add_command(runs.runs)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn every failure into one line and an exit code."""
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
