"""Trait survivorship: which value of a trait a person keeps when sources disagree.

Each trait has a rule: ``latest`` (the most recent value, the default), ``first_seen`` (the
first value ever given: a birthday does not change) or a list of channels, most trusted first
(the value from the most trusted channel that gave one; among equals, the latest). The brand
sets its rules in ``SIYU_HOME/traits.yaml``::

    birthday: first_seen
    gender: [store, crm, miniprogram]
    nickname: latest

Traits it does not name keep the defaults below.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import RootModel, ValidationError, field_validator

from siyu.core.errors import ConfigError
from siyu.core.i18n import N_
from siyu.events.schema import CHANNELS

TRAITS_FILE = "traits.yaml"
Rule = Literal["latest", "first_seen"] | list[str]
DEFAULT_RULES: dict[str, Rule] = {
    "birthday": "first_seen",
    "gender": ["store", "crm", "miniprogram", "wecom", "web"],
    "name": ["store", "crm", "wecom", "miniprogram", "web"],
}


class TraitRules(RootModel[dict[str, Rule]]):
    @field_validator("root")
    @classmethod
    def _known_channels(cls, value: dict[str, Rule]) -> dict[str, Rule]:
        for trait, rule in value.items():
            if isinstance(rule, list):
                unknown = [c for c in rule if c not in CHANNELS]
                if unknown or not rule:
                    raise ValueError(
                        f"{trait}: list channels from {', '.join(CHANNELS)} (got {rule})"
                    )
        return value


def load_trait_rules(home: Path) -> dict[str, Rule]:
    """The defaults with the brand's ``traits.yaml`` over them."""
    path = Path(home) / TRAITS_FILE
    if not path.exists():
        return dict(DEFAULT_RULES)
    try:
        document: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        rules = TraitRules.model_validate(document).root
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(
            N_("{path} is not a valid trait rule file: {reason}"),
            hint=N_("Each trait is latest, first_seen or a list of channels, most trusted first."),
            path=str(path),
            reason=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
        ) from None
    return {**DEFAULT_RULES, **rules}


def survive(rows: list[dict[str, Any]], rules: Mapping[str, Rule] | None = None) -> dict[str, Any]:
    """Each trait's surviving value from identify events (``properties`` JSON and
    ``channel``, oldest first) under ``rules``."""
    rules = DEFAULT_RULES if rules is None else rules
    traits: dict[str, Any] = {}
    rank: dict[str, int] = {}
    for row in rows:
        properties = json.loads(row["properties"]) if row["properties"] else {}
        for key, value in properties.items():
            if value in (None, ""):
                continue
            rule = rules.get(key, "latest")
            if rule == "first_seen":
                traits.setdefault(key, value)
            elif isinstance(rule, list):
                trust = rule.index(row["channel"]) if row["channel"] in rule else len(rule)
                if key not in traits or trust <= rank[key]:
                    traits[key], rank[key] = value, trust
            else:
                traits[key] = value
    return traits
