"""The git-model(1) man page, generated from the click commands, so `git model --help` works.

Git turns `git model --help` into `man git-model`. pip installs man/git-model.1 into
`<prefix>/share/man/man1`, which man-db finds from PATH (`<prefix>/bin`). After adding or
changing a command, regenerate the page (a test fails while it is stale):

    python -m gitmodel.cli.manpage > man/git-model.1
"""

from __future__ import annotations

import re

import click


def _roff(text: str) -> str:
    """Escape text for roff: backslashes, hyphens, and a leading '.' or "'" on a line."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return re.sub(r"^([.'])", r"\\&\1", text, flags=re.M)


def _paragraphs(text: str) -> list[str]:
    """click's help text as paragraphs, each joined into one line ('\\b' blocks kept as lines)."""
    out = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [line.strip() for line in block.splitlines()]
        if lines and lines[0] == "\b":
            out.append("\n.br\n".join(_roff(line) for line in lines[1:]))
        else:
            out.append(_roff(" ".join(lines)))
    return out


def _options(ctx: click.Context, command: click.Command) -> list[str]:
    out = []
    for param in command.get_params(ctx):
        if not isinstance(param, click.Option):
            continue  # arguments are in the synopsis
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, help_text = record
        out += [".TP", f".B {_roff(names)}", _roff(help_text) if help_text else ""]
    return out


def render(group: click.Group) -> str:
    """The whole page: the group, then one subsection per command, in name order."""
    ctx = click.Context(group, info_name="git model", **group.context_settings)
    summary, _, rest = (group.help or "").strip().partition("\n")
    lines = [
        '.TH GIT\\-MODEL 1 "" "git-model" "Git Manual"',
        ".SH NAME",
        f"git\\-model \\- {_roff(summary.strip().rstrip('.'))}",
        ".SH SYNOPSIS",
        f".B git model\n{_roff(' '.join(group.collect_usage_pieces(ctx)))}",
        ".SH DESCRIPTION",
    ]
    for paragraph in _paragraphs(rest) if rest.strip() else []:
        lines += [paragraph, ".PP"]
    lines.append("Each command prints its own help with \\fBgit model\\fR \\fICOMMAND\\fR \\fB\\-h\\fR.")
    lines += [".SH OPTIONS", *_options(ctx, group), ".SH COMMANDS"]
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        if command.hidden:  # internal plumbing, such as the hooks' entry point
            continue
        sub = click.Context(command, info_name=name, parent=ctx)
        usage = " ".join(command.collect_usage_pieces(sub))
        lines.append(f'.SS "git model {_roff(name)} {_roff(usage)}"')
        for paragraph in _paragraphs(command.help or ""):
            lines += [paragraph, ".PP"]
        lines += _options(sub, command)
    lines += [
        ".SH EXIT STATUS",
        "0 success; 1 an error, printed as one line; 2 a usage error; 3 a bug in git\\-model; 130 interrupted.",
        ".SH SEE ALSO",
        "The user guide, docs/user\\-guide.md in the git\\-model sources.",
    ]
    return "\n".join(line for line in lines if line != "") + "\n"


if __name__ == "__main__":
    from gitmodel.cli import cli

    click.echo(render(cli), nl=False)
