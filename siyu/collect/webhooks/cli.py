"""``siyu webhooks …``: add, list and remove inbound webhook endpoints (secrets never shown)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from siyu.collect.webhooks import orders, service
from siyu.collect.webhooks.exceptions import WebhookConfigError
from siyu.collect.webhooks.models import OrderEndpointCreate, WecomEndpointCreate
from siyu.collect.webhooks.secrets import SecretBox, secret_box
from siyu.core.config import ensure_home, secret_key
from siyu.core.i18n import N_
from siyu.core.i18n import gettext as _
from siyu.core.ids import new_token

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound=BaseModel)

app = typer.Typer(help="Inbound webhooks: WeCom callbacks and shop orders.", no_args_is_help=True)
console = Console()


@contextmanager
def _session() -> Iterator[tuple[Session, SecretBox]]:
    from siyu.cli_stores import cli_settings as _settings
    from siyu.store import open_database
    from siyu.store.migrate import require_current

    settings = _settings()
    ensure_home(settings)
    database = open_database(settings.resolved_database_url)
    try:
        require_current(database)
        with database.unit_of_work() as session:
            yield session, secret_box(secret_key(settings))
    finally:
        database.dispose()


def _handle(func: Callable[P, R]) -> Callable[P, R]:
    """``siyu.cli.handle_errors``, looked up when the command runs (siyu.cli imports us)."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from siyu.cli_stores import handle_errors

        return handle_errors(func)(*args, **kwargs)

    return wrapper


def _validated(model: type[M], **values: Any) -> M:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]} for e in exc.errors()
        ]
        first = errors[0]
        raise WebhookConfigError(
            N_("Invalid {field}: {reason}"),
            errors=errors,
            field=first["field"],
            reason=first["reason"],
        ) from None


def _print_created(endpoint_id: str, path: str) -> None:
    console.print(_("Webhook endpoint {id} created").format(id=endpoint_id), highlight=False)
    console.print(f"{_('Path')}: {path}", highlight=False)


@app.command("add-wecom")
@_handle
def add_wecom(
    name: Annotated[str, typer.Option("--name", help="A name for this endpoint.")],
    corp_id: Annotated[str, typer.Option("--corp-id", help="The CorpID (企业ID).")],
    token: Annotated[str, typer.Option("--token", help="The callback Token.")],
    aes_key: Annotated[str, typer.Option("--aes-key", help="The EncodingAESKey (43 characters).")],
) -> None:
    """Add a WeCom callback endpoint; give WeCom the printed path under your public URL."""
    endpoint_in = _validated(
        WecomEndpointCreate, name=name, corp_id=corp_id, token=token, encoding_aes_key=aes_key
    )
    with _session() as (session, box):
        endpoint = service.create_wecom(db_session=session, endpoint_in=endpoint_in, box=box)
        read = service.to_read(endpoint)
    _print_created(read.id, read.path)


@app.command("add-order")
@_handle
def add_order(
    name: Annotated[str, typer.Option("--name", help="A name for this endpoint.")],
    secret: Annotated[
        str | None,
        typer.Option("--secret", help="Shared HMAC secret (generated and shown once if absent)."),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option("--mapping", help="Field mapping as a JSON file.", exists=True),
    ] = None,
    preset: Annotated[
        str | None, typer.Option("--preset", help="A built-in mapping: youzan or shopify.")
    ] = None,
) -> None:
    """Add an order webhook endpoint with a field mapping (a file or a preset)."""
    if (mapping is None) == (preset is None):
        raise WebhookConfigError(N_("Give exactly one of --mapping FILE.json or --preset NAME"))
    if mapping is not None:
        try:
            field_mapping = json.loads(mapping.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise WebhookConfigError(
                N_("The mapping file {path} cannot be read: {reason}"),
                path=str(mapping),
                reason=str(exc),
            ) from None
    else:
        field_mapping = orders.preset(preset or "").model_dump(
            mode="json", by_alias=True, exclude_defaults=True
        )
    generated = secret is None
    shared = secret if secret is not None else new_token(32)
    endpoint_in = _validated(
        OrderEndpointCreate, name=name, secret=shared, field_mapping=field_mapping
    )
    with _session() as (session, box):
        endpoint = service.create_order(db_session=session, endpoint_in=endpoint_in, box=box)
        read = service.to_read(endpoint)
    _print_created(read.id, read.path)
    if generated:
        console.print(
            _("Secret (shown only now, store it with the sender): {secret}").format(secret=shared),
            highlight=False,
        )


@app.command("list")
@_handle
def list_endpoints(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the endpoints, secrets masked."""
    with _session() as (session, _box):
        reads = [service.to_read(e) for e in service.list_endpoints(db_session=session)]
    if as_json:
        console.print_json(json.dumps([r.model_dump(mode="json") for r in reads]))
        return
    table = Table(title=_("Webhook endpoints"))
    for column in ("ID", _("Kind"), _("Name"), _("Path"), "CorpID", _("Secret"), _("Status")):
        table.add_column(column)
    for read in reads:
        table.add_row(
            read.id,
            read.kind.value,
            read.name,
            read.path,
            read.corp_id or "",
            read.secret or read.token or "",
            read.status.value,
        )
    console.print(table)


@app.command("remove")
@_handle
def remove(endpoint_id: Annotated[str, typer.Argument(help="The endpoint id.")]) -> None:
    """Remove an endpoint; deliveries to it get 404 from now on."""
    with _session() as (session, _box):
        service.delete(db_session=session, endpoint_id=endpoint_id)
    console.print(_("Webhook endpoint {id} removed").format(id=endpoint_id), highlight=False)
