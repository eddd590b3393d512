"""`git model compare`: metrics and key params across versions of a model, with an optional plot."""

from __future__ import annotations

from pathlib import Path

import click

from gitmodel.cli import jsonout


@click.command("compare")
@click.argument("name")
@click.argument("versions", nargs=-1, metavar="[VERSION]...")
@click.option("--plot", "plot_to", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Also draw the metrics across versions into FILE (.png or .svg; needs git-model[plot]).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts (schema: docs/review.md).")
def command(name: str, versions: tuple[str, ...], plot_to: Path | None, as_json: bool) -> None:
    """Compare the metrics and key params of model NAME across VERSIONs (all tagged ones by default).

    A VERSION is v1.2.0, latest, a stage, or a commit; the best value of each metric is
    marked, judged by its goal (.gitmodel.toml [metrics.goals], or the metric's name).
    """
    from gitmodel import api
    from gitmodel import compare as cmp

    ws = api.Workspace()
    result = cmp.compare(ws.git, name, versions)
    if plot_to is not None:
        cmp.plot(result, plot_to)
    if as_json:
        click.echo(jsonout.dumps(cmp.to_json(result)))
    else:
        click.echo(cmp.table(result), nl=False)
        if plot_to is not None:
            click.echo(f"plot written to {plot_to}")
