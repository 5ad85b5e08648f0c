"""The ``siyu analytics`` and ``siyu experiments`` command groups and the options their
commands share; each analysis module adds its commands to these apps."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console

from siyu.core.errors import InvalidInputError
from siyu.core.i18n import N_

analytics_app = typer.Typer(
    help="Analytics: metrics, funnels, retention, paths, attribution.", no_args_is_help=True
)
experiments_app = typer.Typer(help="Experiments: define, assign, analyse.", no_args_is_help=True)
console = Console()
Q = TypeVar("Q", bound=BaseModel)

FromOption = Annotated[
    date | None,
    typer.Option("--from", help="First local day (YYYY-MM-DD); default: 30 days before --to."),
]
ToOption = Annotated[
    date | None,
    typer.Option("--to", help="Last local day (YYYY-MM-DD); default: the latest event's day."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def print_json(result: BaseModel | dict[str, Any] | list[Any]) -> None:
    """A result as JSON on standard output (Chinese kept readable)."""
    data = result.model_dump(mode="json") if isinstance(result, BaseModel) else result
    console.print_json(json.dumps(data, default=str, ensure_ascii=False))


def cli_query(model: type[Q], **fields: Any) -> Q:
    """The query the options spell, or a clear error (not a traceback) for a value out of range."""
    try:
        return model(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidInputError(
            N_("Invalid option {field}: {reason}"),
            field=".".join(str(part) for part in first["loc"]),
            reason=first["msg"],
        ) from None
