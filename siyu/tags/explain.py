"""A tag definition's computation in words an operator can read (the console's "why this
value": which events, which window, which formula)."""

from __future__ import annotations

from siyu.core.i18n import gettext
from siyu.tags.definitions import Aggregate, Formula, TagDefinition, Trait


def describe_computation(definition: TagDefinition) -> list[str]:
    """The definition's computation in a sentence or two an operator can read."""
    compute = definition.compute
    if isinstance(compute, Aggregate):
        lines = [
            gettext("{function} over the events {events}").format(
                function=compute.function.value + (f"({compute.field})" if compute.field else ""),
                events=", ".join(compute.events),
            )
        ]
        if compute.window_days:
            lines.append(gettext("in the last {days} days").format(days=compute.window_days))
        if compute.before_days:
            lines.append(
                gettext("only before the last {days} days").format(days=compute.before_days)
            )
        for condition in compute.where:
            value = "" if condition.value is None else f" {condition.value!r}"
            lines.append(
                gettext("where {condition}").format(
                    condition=f"{condition.field} {condition.op}{value}"
                )
            )
        return lines
    if isinstance(compute, Trait):
        rule = gettext("latest value") if compute.rule == "latest" else gettext("first value")
        return [gettext("Profile trait {trait} ({rule})").format(trait=compute.trait, rule=rule)]
    if isinstance(compute, Formula):
        return [
            gettext("Formula over other tags: {expression}").format(expression=compute.expression)
        ]
    return [gettext("Assigned by hand or imported from a file")]
