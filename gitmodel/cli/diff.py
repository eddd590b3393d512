"""`git model diff`: what changed in models between versions, commits or the working tree; and the textconv driver."""

from __future__ import annotations

import sys

import click

from gitmodel.cli import jsonout


@click.command("diff")
@click.argument("a", required=False, metavar="[A")
@click.argument("b", required=False, metavar="[B]]")
@click.option("--stat", "as_stat", is_flag=True, help="One line per model.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts (schema: docs/review.md).")
@click.option("--markdown", "as_markdown", is_flag=True, help="Print Markdown for a pull-request comment.")
@click.option("--numeric", is_flag=True,
              help="Also compare the values of changed float tensors (max abs diff, relative L2, values changed); reads the store.")
def command(a: str | None, b: str | None, as_stat: bool, as_json: bool, as_markdown: bool, numeric: bool) -> None:
    """Show what changed in models: tensors, dtypes and shapes, metadata, metric deltas and the version bump.

    A and B are model versions (NAME@v1.2.0, NAME@production, NAME@latest), commits, or a
    range (main...HEAD: from the merge base). Without B, A is compared with the working
    tree; without A, HEAD is.
    """
    from gitmodel import api, review_render
    from gitmodel.diff import diff

    if sum((as_stat, as_json, as_markdown)) > 1:
        raise click.UsageError("give one of --stat, --json, --markdown")
    ws = api.Workspace()
    result = diff(ws.git, a, b)
    numbers = None
    if numeric:
        from gitmodel.allocator import keep_freed_memory
        from gitmodel.numeric import numeric_of

        keep_freed_memory()  # this process decodes every chunk of both versions: reuse their buffers
        numbers = numeric_of(ws.store, result)
    if as_json:
        click.echo(jsonout.dumps(review_render.to_json(result, numbers)))
    elif as_markdown:
        click.echo(review_render.markdown(result, numbers), nl=False)
    elif as_stat:
        click.echo(review_render.stat(result), nl=False)
    else:
        click.echo(review_render.text(result, numbers), nl=False)


@click.command("textconv", hidden=True)
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True))
def textconv(path: str) -> None:
    """The diff driver of *.model.toml (set by 'git model init'): print a pointer's summary."""
    from gitmodel.pointer_summary import textconv as convert

    data = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()
    sys.stdout.buffer.write(convert(data))
    sys.stdout.flush()


commands = [command, textconv]
