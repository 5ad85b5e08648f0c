"""``siyu experiments …``: thin commands over the experiments service and analysis."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
import yaml
from pydantic import ValidationError
from rich.table import Table

from siyu.analytics.cli_app import JsonOption, console, experiments_app, print_json
from siyu.analytics.experiments import analysis, service
from siyu.analytics.experiments.models import (
    ExperimentCreate,
    ExperimentRead,
    ExperimentResults,
    PowerRequest,
    PowerResult,
)
from siyu.core.config import secret_key
from siyu.core.errors import InvalidInputError
from siyu.core.i18n import N_
from siyu.core.i18n import gettext as _
from siyu.identity import service as identity

KeyArgument = Annotated[str, typer.Argument(help="The experiment's key.")]


def read_definition(path: Path, text: str) -> ExperimentCreate:
    """An experiment from YAML (or JSON, which is YAML) text, or a clear error naming it."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInputError(
            N_("{path} is not valid YAML: {reason}"), path=str(path), reason=str(exc)
        ) from None
    try:
        return ExperimentCreate.model_validate(data)
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise InvalidInputError(
            N_("{path} is not a valid experiment: {field}: {reason}"),
            path=str(path),
            field=".".join(str(p) for p in problem["loc"]) or "-",
            reason=problem["msg"],
        ) from None


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2%}"


def show_experiment(experiment: ExperimentRead) -> None:
    console.print(
        _("{key} ({name}): {status}, {kind}").format(
            key=experiment.key,
            name=experiment.name,
            status=experiment.status.value,
            kind=experiment.kind.value,
        )
    )
    if experiment.hypothesis:
        console.print(experiment.hypothesis)
    table = Table(title=_("Variants"))
    table.add_column(_("Variant"))
    table.add_column(_("Name"))
    table.add_column(_("Weight"), justify="right")
    table.add_column(_("Control"))
    for variant in experiment.variants:
        table.add_row(
            variant.key, variant.name, f"{variant.weight:g}%", "✓" if variant.control else ""
        )
    console.print(table)


def show_results(found: ExperimentResults) -> None:
    console.print(
        _("{key}: {people:,} people exposed ({status})").format(
            key=found.key, people=found.exposed, status=found.status.value
        )
    )
    if found.note:
        console.print(_("Nobody has been exposed yet: no results."))
        return
    if found.srm is not None and found.srm.flagged:
        console.print(
            _(
                "[bold red]Sample ratio mismatch[/] (p = {p:.2g}): check assignment and logging."
            ).format(p=found.srm.p_value)
        )
    for metric in found.metrics:
        table = Table(title=f"{metric.key} ({metric.kind}, {metric.window_days}d)")
        table.add_column(_("Variant"))
        table.add_column(_("People"), justify="right")
        table.add_column(_("Per person"), justify="right")
        table.add_column(_("Lift"), justify="right")
        table.add_column(_("95% interval of lift"), justify="right")
        table.add_column(_("p (Holm)"), justify="right")
        by_variant = {c.variant: c for c in metric.comparisons}
        for value in metric.variants:
            compared = by_variant.get(value.variant)
            interval = compared.lift_ci if compared else None
            table.add_row(
                value.variant,
                f"{value.people:,}",
                _fmt(value.adjusted_mean if value.adjusted_mean is not None else value.mean),
                _pct(compared.lift) if compared else _("control"),
                f"{_pct(interval.low)} … {_pct(interval.high)}" if interval else "-",
                _fmt(compared.p_adjusted, 3) if compared else "",
            )
        console.print(table)


def _register() -> None:
    from siyu.cli_stores import handle_errors, open_stores, read_text_file

    @experiments_app.command("create")
    @handle_errors
    def create(
        file: Annotated[Path, typer.Argument(help="The definition, YAML or JSON.")],
        as_json: JsonOption = False,
    ) -> None:
        """Create an experiment (a draft) from a YAML file."""
        spec = read_definition(file, read_text_file(file))
        with open_stores() as (_settings, session, events):
            created = service.create(session, events, spec)
        if as_json:
            print_json(created)
            return
        console.print(_("Experiment {key} saved as a draft").format(key=created.key))

    @experiments_app.command("list")
    @handle_errors
    def list_command(
        status: Annotated[
            Literal["draft", "running", "stopped"] | None, typer.Option(help="Only these.")
        ] = None,
        as_json: JsonOption = False,
    ) -> None:
        """List experiments."""
        with open_stores() as (_settings, session, _events):
            page = service.list_experiments(session, status=status, limit=500)
        if as_json:
            print_json(page)
            return
        table = Table(title=_("Experiments"))
        for label in (_("Key"), _("Name"), _("Status"), _("Kind"), _("Variants")):
            table.add_column(label)
        for item in page.items:
            variants = ", ".join(f"{v.key} {v.weight:g}%" for v in item.variants)
            table.add_row(item.key, item.name, item.status.value, item.kind.value, variants)
        console.print(table)

    @experiments_app.command("show")
    @handle_errors
    def show(key: KeyArgument, as_json: JsonOption = False) -> None:
        """Show an experiment's definition."""
        with open_stores() as (_settings, session, _events):
            experiment = service.get_or_raise(session, key)
        if as_json:
            print_json(experiment)
            return
        show_experiment(experiment)

    @experiments_app.command("start")
    @handle_errors
    def start(key: KeyArgument) -> None:
        """Start a draft: exposures are logged from now on."""
        with open_stores() as (_settings, session, _events):
            started = service.start(session, key)
        console.print(_("Experiment {key} is running").format(key=started.key))

    @experiments_app.command("stop")
    @handle_errors
    def stop(key: KeyArgument) -> None:
        """Stop a running experiment (exposed people are still measured)."""
        with open_stores() as (_settings, session, _events):
            stopped = service.stop(session, key)
        console.print(_("Experiment {key} is stopped").format(key=stopped.key))

    @experiments_app.command("expose")
    @handle_errors
    def expose(
        key: KeyArgument,
        people: Annotated[
            list[str] | None, typer.Argument(help="Person ids or identifiers TYPE:VALUE.")
        ] = None,
        file: Annotated[
            Path | None, typer.Option(help="One person id or identifier a line.")
        ] = None,
        at: Annotated[datetime | None, typer.Option(help="When they were exposed.")] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Log that people saw the experiment; prints each one's variant."""
        given = list(people or [])
        if file is not None:
            given += [line.strip() for line in read_text_file(file).splitlines() if line.strip()]
        if not given:
            raise InvalidInputError(N_("Give people to expose, or --file"), field="people")
        with open_stores() as (settings, session, events):
            if at is not None and at.tzinfo is None:
                at = at.replace(tzinfo=settings.tz)
            result = service.expose(
                session,
                events,
                key,
                given,
                hash_key=identity.derive_hash_key(secret_key(settings)),
                tz=settings.tz,
                at=at,
            )
        if as_json:
            print_json(result)
            return
        table = Table(
            title=_("{exposed:,} exposed, {already:,} already exposed, {errors:,} errors").format(
                exposed=result.exposed, already=result.already_exposed, errors=result.errors
            )
        )
        for label in (_("Given"), _("Person"), _("Variant"), _("Status")):
            table.add_column(label)
        for item in result.items[:200]:
            table.add_row(item.input, item.person_id or "-", item.variant or "-", item.status)
        console.print(table)

    @experiments_app.command("results")
    @handle_errors
    def results(
        key: KeyArgument,
        alpha: Annotated[float, typer.Option(min=0.0001, max=0.5, help="Significance.")] = 0.05,
        as_json: JsonOption = False,
    ) -> None:
        """Each treatment against the control on every metric."""
        with open_stores() as (_settings, session, events):
            experiment = service.get_or_raise(session, key)
            found = analysis.results(events, experiment, alpha=alpha)
        if as_json:
            print_json(found)
            return
        show_results(found)

    @experiments_app.command("power")
    @handle_errors
    def power(
        kind: Annotated[Literal["proportion", "mean"], typer.Option(help="What is compared.")],
        baseline: Annotated[float, typer.Option(min=0, help="Control's rate or mean.")],
        mde: Annotated[float, typer.Option(min=0, help="Smallest change worth detecting.")],
        relative: Annotated[bool, typer.Option(help="The change is relative.")] = False,
        sd: Annotated[float | None, typer.Option(help="Means: per-person sd.")] = None,
        alpha: Annotated[float, typer.Option(help="Significance.")] = 0.05,
        power_wanted: Annotated[float, typer.Option("--power", help="Power.")] = 0.8,
        ratio: Annotated[float, typer.Option(help="People per treatment / control.")] = 1.0,
        variants: Annotated[int, typer.Option(min=2, max=10, help="Variants.")] = 2,
        daily: Annotated[int | None, typer.Option(min=1, help="People exposed a day.")] = None,
        as_json: JsonOption = False,
    ) -> None:
        """People (and days) an experiment needs to detect a change."""
        try:
            request = PowerRequest(
                kind=kind,
                baseline=baseline,
                mde=mde,
                relative=relative,
                sd=sd,
                alpha=alpha,
                power=power_wanted,
                ratio=ratio,
                variants=variants,
                daily_people=daily,
            )
        except ValidationError as exc:
            problem = exc.errors()[0]
            raise InvalidInputError(
                N_("Invalid {field}: {reason}"),
                field=".".join(str(p) for p in problem["loc"]),
                reason=problem["msg"],
            ) from None
        planned: PowerResult = analysis.plan(request)
        if as_json:
            print_json(planned)
            return
        console.print(
            _(
                "{control:,} people in the control and {treatment:,} in each treatment: "
                "{total:,} in all"
            ).format(control=planned.control, treatment=planned.per_treatment, total=planned.total)
        )
        if planned.days is not None:
            console.print(_("About {days:,} days at that traffic").format(days=planned.days))


_register()
