"""`offerloop attribution paths FILE …`: run a model on a paths file (GA4, a spreadsheet) without a database;
`offerloop attribution refresh`: recompute the stored per-conversion credit of a workspace."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from offerloop.attribution import service
from offerloop.attribution.exceptions import AttributionInputError
from offerloop.attribution.models import MODELS, attribute
from offerloop.attribution.paths_file import PathsFileFormat, read_paths_file
from offerloop.cli.common import WorkspaceOpt, database, print_json, settings
from offerloop.core.clock import utcnow
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


def _day(text: str | None, name: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise AttributionInputError(f"--{name} must be a date (YYYY-MM-DD), got {text!r}") from exc


@app.command("refresh")
def refresh(
    workspace: WorkspaceOpt,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="A model to store (repeat); default: all")
    ] = None,
    conversion: Annotated[str, typer.Option(help="The conversion's event name")] = service.DEFAULT_CONVERSION,
    where: Annotated[
        str | None,
        typer.Option(
            help="Refused: stored credit covers every conversion (GET /v1/attribution filters by one)"
        ),
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="First day (YYYY-MM-DD); default: 30 days before end")
    ] = None,
    end: Annotated[str | None, typer.Option(help="Last day, inclusive; default: today")] = None,
    lookback_days: Annotated[int, typer.Option(help="Days of touches before a conversion (1-365)")] = 30,
    order: Annotated[int, typer.Option(help="Markov order (1-3)")] = 1,
    half_life_days: Annotated[float, typer.Option(help="time_decay half-life in days")] = 7.0,
    json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Recompute the stored per-conversion credit of a period (what POST /v1/attribution/refresh does)."""
    with one_line_errors():
        try:
            condition = orjson.loads(where) if where else None
        except orjson.JSONDecodeError as exc:
            raise AttributionInputError("--where must be a JSON object") from exc
        definition = service.Definition.parse(conversion, condition)
        lo, hi = service.period(_day(start, "start"), _day(end, "end"), today=utcnow().date())
        with database(settings()) as db, db.write() as session:
            result = service.refresh(session=session, workspace_id=workspace, models_=model or list(MODELS),
                                     definition=definition, start=lo, end=hi, lookback_days=lookback_days,
                                     order=order, half_life_days=half_life_days)  # fmt: skip
    if json:
        print_json(result)
    else:
        typer.echo(
            f"{result.rows} credit rows for {result.conversions} conversions ({', '.join(result.models)})"
        )
