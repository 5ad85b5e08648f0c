"""Which file column feeds which event field: explicit ``--map target=source`` pairs, a
mapping file, and automatic matches on common column names (English and Chinese)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from siyu.collect.importer.errors import ImportMappingError
from siyu.collect.importer.models import ImportKind
from siyu.core.i18n import N_
from siyu.events.schema import IDENTIFIER_TYPES as EVENT_IDENTIFIER_TYPES

# Identifier columns a file may have (a device id in a file is a device_id, never anonymous).
IDENTIFIER_TYPES = tuple(kind for kind in EVENT_IDENTIFIER_TYPES if kind != "anonymous_id")

_TEXT_TARGETS = (
    "event_id",
    "name",
    "ts",
    "user_id",
    "anonymous_id",
    "identifiers",
    "channel",
    "source",
    "scene",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "properties",
    "order_id",
    "amount",
    "currency",
    "sku",
    "category",
    "quantity",
)

TARGETS: dict[ImportKind, tuple[str, ...]] = {
    ImportKind.events: _TEXT_TARGETS + IDENTIFIER_TYPES,
    ImportKind.people: ("event_id", "ts", "channel", "source", *IDENTIFIER_TYPES),
    ImportKind.orders: (
        "event_id",
        "ts",
        "order_id",
        "amount",
        "currency",
        "sku",
        "category",
        "quantity",
        "channel",
        "source",
        "user_id",
        *IDENTIFIER_TYPES,
    ),
}

# Names a column may carry for each target, compared without case, spaces, "_" and "-".
SYNONYMS: dict[str, tuple[str, ...]] = {
    "event_id": ("event_id", "messageId", "message_id", "msg_id", "事件ID"),
    "name": ("name", "event", "event_name", "事件", "事件名", "事件名称"),
    "ts": ("ts", "timestamp", "time", "event_time", "created_at", "时间", "发生时间"),
    "user_id": ("user_id", "userId", "uid"),
    "anonymous_id": ("anonymous_id", "anonymousId", "distinct_id"),
    "phone": ("phone", "mobile", "mobile_phone", "tel", "telephone", "手机", "手机号", "手机号码"),
    "email": ("email", "e-mail", "mail", "邮箱", "电子邮箱"),
    "member_no": ("member_no", "member_id", "member_number", "会员号", "会员编号", "会员卡号"),
    "openid": ("openid", "open_id"),
    "unionid": ("unionid", "union_id"),
    "wecom_external_userid": ("wecom_external_userid", "external_userid", "外部联系人ID"),
    "device_id": ("device_id", "设备号", "设备ID"),
    "order_id": ("order_id", "order_no", "order_number", "订单号", "订单编号"),
    "amount": (
        "amount",
        "total",
        "total_amount",
        "pay_amount",
        "paid_amount",
        "金额",
        "实付金额",
        "支付金额",
        "订单金额",
    ),
    "currency": ("currency", "币种"),
    "sku": ("sku", "sku_id", "商品编码"),
    "category": ("category", "品类", "类目"),
    "quantity": ("quantity", "qty", "数量"),
    "channel": ("channel", "渠道"),
    "source": ("source", "来源"),
}
# Orders are timed by when they were paid; people have no event time of their own.
ORDER_TS = ("paid_at", "pay_time", "payment_time", "支付时间", "付款时间", "ts", "timestamp")

REQUIRED: dict[ImportKind, tuple[str, ...]] = {
    ImportKind.events: ("name", "ts"),
    ImportKind.people: (),
    ImportKind.orders: ("order_id", "amount", "ts"),
}


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name).lower()


def parse_pairs(pairs: Iterable[str]) -> dict[str, str]:
    """``["ts=created_at", …]`` → ``{"ts": "created_at"}``."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        target, sep, source = pair.partition("=")
        if not sep or not target.strip() or not source.strip():
            raise ImportMappingError(
                N_("--map {pair!r} is not target=source"),
                hint=N_("Write e.g. --map ts=created_at --map user_id=member_id."),
                pair=pair,
            )
        mapping[target.strip()] = source.strip()
    return mapping


def load_mapping_file(path: Path) -> dict[str, str]:
    """A YAML or JSON object ``{target: source}`` (optionally under a ``columns`` key)."""
    try:
        text = path.read_text(encoding="utf-8")
        loaded = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ImportMappingError(
            N_("The mapping file {path} cannot be read: {reason}"),
            path=str(path),
            reason=str(exc).strip().splitlines()[0],
        ) from None
    if isinstance(loaded, Mapping) and isinstance(loaded.get("columns"), Mapping):
        loaded = loaded["columns"]
    if not isinstance(loaded, Mapping) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in loaded.items()
    ):
        raise ImportMappingError(
            N_("The mapping file {path} must hold an object of target: source column names"),
            path=str(path),
        )
    return dict(loaded)


def check_targets(kind: ImportKind, explicit: Mapping[str, str]) -> None:
    unknown = sorted(set(explicit) - set(TARGETS[kind]))
    if unknown:
        raise ImportMappingError(
            N_("Unknown mapping target(s) {targets} for {kind}; known: {known}"),
            targets=", ".join(unknown),
            kind=kind.value,
            known=", ".join(TARGETS[kind]),
        )


def resolve(
    kind: ImportKind, columns: Iterable[str], explicit: Mapping[str, str]
) -> dict[str, str]:
    """``{target: source column}`` for a file with ``columns``: the explicit pairs first, then
    the first column whose name matches a synonym of each remaining target. A column feeds
    one target at most, unless the user maps it twice."""
    present = [name for name in columns if not name.startswith("__")]
    by_key: dict[str, str] = {}
    for name in present:
        by_key.setdefault(_key(name), name)
    resolved = dict(explicit)
    used = set(explicit.values())
    for target in TARGETS[kind]:
        if target in resolved:
            continue
        names = (
            ORDER_TS
            if (kind is ImportKind.orders and target == "ts")
            else SYNONYMS.get(target, (target,))
        )
        if kind is ImportKind.people and target == "ts":
            continue
        for synonym in names:
            source = by_key.get(_key(synonym))
            if source is not None and source not in used:
                resolved[target] = source
                used.add(source)
                break
    return resolved


def check_resolved(
    kind: ImportKind, columns: Iterable[str], resolved: Mapping[str, str], id_type: str
) -> None:
    """Refuse a mapping whose sources the file lacks or that misses a required target."""
    present = set(columns)
    missing_sources = sorted(
        f"{target}={source}" for target, source in resolved.items() if source not in present
    )
    if missing_sources:
        raise ImportMappingError(
            N_("The file has no column for {pairs}; its columns are: {columns}"),
            pairs=", ".join(missing_sources),
            columns=", ".join(sorted(name for name in present if not name.startswith("__"))),
        )
    lacking = [target for target in REQUIRED[kind] if target not in resolved]
    if kind is ImportKind.people and not any(kind in resolved for kind in IDENTIFIER_TYPES):
        lacking.append(id_type)
    if lacking:
        raise ImportMappingError(
            N_("No column found for {targets}; the file's columns are: {columns}"),
            hint=N_("Name the column with --map, e.g. --map {example}=<column>."),
            targets=", ".join(lacking),
            columns=", ".join(sorted(name for name in present if not name.startswith("__"))),
            example=lacking[0],
        )
