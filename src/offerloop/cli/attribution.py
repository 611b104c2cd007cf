"""`offerloop attribution paths FILE …`: run a model on a paths file (GA4, a spreadsheet) without a database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from offerloop.attribution.models import MODELS, attribute
from offerloop.attribution.paths_file import PathsFileFormat, read_paths_file
from offerloop.cli.common import print_json
from offerloop.core.errors import OfferloopError

app = typer.Typer(
    help="Multi-touch attribution: paths files and the store's conversions.", no_args_is_help=True
)


@contextmanager
def one_line_errors() -> Iterator[None]:
    """A refused input is one line on stderr and exit code 2 (scripts check the code, people read the line)."""
    try:
        yield
    except OfferloopError as exc:
        typer.echo(f"error [{exc.code}]: {exc.message}", err=True)
        raise typer.Exit(2) from exc


def _table(result: dict[str, Any]) -> list[str]:
    lines = [f"model: {result['model']}", f"{'channel':<24} {'conversions':>14} {'value':>16} {'removal':>9}"]
    for c in result["channels"]:
        re = "" if c["removal_effect"] is None else f"{c['removal_effect']:.4f}"
        lines.append(f"{c['channel'][:24]:<24} {c['conversions']:>14.4f} {c['value']:>16.4f} {re:>9}")
    return lines


@app.command("paths")
def paths(
    file: Annotated[Path, typer.Argument(help="CSV file: one row per distinct path")],
    model: Annotated[str, typer.Option(help=f"One of: {', '.join(MODELS)}")] = "markov",
    sep: Annotated[str, typer.Option(help="Column separator")] = ",",
    path_col: Annotated[str, typer.Option(help="Column of the paths")] = "path",
    conv_col: Annotated[str, typer.Option(help="Column of the conversions")] = "total_conversions",
    value_col: Annotated[str | None, typer.Option(help="Column of the conversion value (optional)")] = None,
    null_col: Annotated[
        str | None, typer.Option(help="Column of the paths without conversion (optional)")
    ] = None,
    path_sep: Annotated[str, typer.Option(help="Separator of the channels inside a path")] = ">",
    order: Annotated[int, typer.Option(help="Markov order (1-3)")] = 1,
    half_life: Annotated[
        float, typer.Option(help="time_decay half-life, in touches counted from the last one")
    ] = 7.0,
    json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Share the conversions (and their value) of a paths file among its channels with one model."""
    with one_line_errors():
        fmt = PathsFileFormat(sep=sep, path_col=path_col, conv_col=conv_col, value_col=value_col,
                              null_col=null_col, path_sep=path_sep)  # fmt: skip
        result = attribute(read_paths_file(file, fmt), model, order=order, half_life=half_life).as_dict()
    if json:
        print_json(result)
    else:
        typer.echo("\n".join(_table(result)))
