"""WeCom callback XML (outer envelope and decrypted event) and the event rows it becomes.

XML is parsed with defusedxml: entity declarations, external entities and DTDs are refused,
so an XML bomb or an XXE payload is a 400, never an expansion.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from siyu.collect.webhooks.exceptions import WebhookPayloadError
from siyu.core.i18n import N_

# ChangeType of change_external_contact → event name (see docs/webhooks.md).
CONTACT_EVENTS = {
    "add_external_contact": "wecom_add_contact",
    "add_half_external_contact": "wecom_add_half_contact",
    "edit_external_contact": "wecom_edit_contact",
    "del_external_contact": "wecom_delete_contact",
    "del_follow_user": "wecom_delete_contact",
}
# Who ended the relationship, for the two ChangeTypes that share wecom_delete_contact.
DELETED_BY = {"del_external_contact": "staff", "del_follow_user": "customer"}
CONTACT_PROPERTIES = {
    "UserID": "staff_userid",
    "State": "state",
    "WelcomeCode": "welcome_code",
    "Source": "delete_source",
    "FailReason": "fail_reason",
}
GROUP_PROPERTIES = {
    "ChatId": "chat_id",
    "UpdateDetail": "update_detail",
    "JoinScene": "join_scene",
    "QuitScene": "quit_scene",
    "MemChangeCnt": "member_change_count",
    "LastMemVer": "last_member_version",
    "CurMemVer": "current_member_version",
}
# External user ids are issued with these prefixes; anything else in a member list is staff.
EXTERNAL_USERID_PREFIXES = ("wm", "wo")


def parse_xml(data: bytes | str, *, what: str) -> Element:
    """Parse untrusted XML with entity expansion and DTDs disabled."""
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise WebhookPayloadError(
            N_("The {what} XML declares entities or a DTD, which are refused"),
            what=what,
            reason="unsafe_xml",
        ) from None
    except (ParseError, ValueError) as exc:
        raise WebhookPayloadError(
            N_("The {what} XML cannot be read: {reason}"), what=what, reason=str(exc)
        ) from None
    if not isinstance(root, Element):  # pragma: no cover - fromstring always gives an element
        raise WebhookPayloadError(N_("The {what} XML cannot be read"), what=what)
    return root


def text_of(root: Element, tag: str) -> str | None:
    node = root.find(tag)
    if node is None or node.text is None:
        return None
    return node.text.strip() or None


def envelope_encrypt(body: bytes) -> str:
    """The ``Encrypt`` field of a callback body ``<xml><ToUserName/><Encrypt/><AgentID/></xml>``."""
    encrypt = text_of(parse_xml(body, what="callback"), "Encrypt")
    if encrypt is None:
        raise WebhookPayloadError(N_("The callback XML has no Encrypt element"), what="callback")
    return encrypt


def _members(root: Element) -> list[str]:
    node = root.find("MemChangeList")
    if node is None:
        return []
    items = [(item.text or "").strip() for item in node.findall("Item")]
    if not items and node.text:  # the older form: one comma-separated text
        items = node.text.split(",")
    return [item.strip() for item in items if item.strip()]


def callback_rows(message: bytes, *, corp_id: str, endpoint_id: str) -> list[dict[str, Any]]:
    """The event rows for one decrypted callback (none for events siyu does not keep).

    ``event_id`` is derived from the CorpID and the decrypted XML, which WeCom's retries of a
    callback repeat byte for byte, so a retry is skipped by the event store.
    """
    root = parse_xml(message, what="event")
    event = text_of(root, "Event")
    change_type = text_of(root, "ChangeType")
    digest = hashlib.sha256(corp_id.encode() + b"\n" + message).hexdigest()
    base_id = f"wecom:{digest}"
    ts = _create_time(text_of(root, "CreateTime"))
    common: dict[str, Any] = {
        "ts": ts,
        "channel": "wecom",
        "source": "wecom_callback",
    }
    base_properties: dict[str, Any] = {
        "wecom_event": event,
        "change_type": change_type,
        "corp_id": corp_id,
        "webhook_endpoint": endpoint_id,
    }
    if event == "change_external_contact" and change_type in CONTACT_EVENTS:
        external = text_of(root, "ExternalUserID")
        properties = dict(base_properties)
        properties.update(_pick(root, CONTACT_PROPERTIES))
        if change_type in DELETED_BY:
            properties["deleted_by"] = DELETED_BY[change_type]
        identifiers = _identifiers(root, external)
        return [
            {
                **common,
                "event_id": base_id,
                "name": CONTACT_EVENTS[change_type],
                "user_id": f"wecom_external_userid:{external}" if external else None,
                "identifiers": identifiers or None,
                "properties": properties,
            }
        ]
    if event == "change_external_chat" and change_type in {"create", "update", "dismiss"}:
        properties = dict(base_properties)
        properties.update(_pick(root, GROUP_PROPERTIES))
        detail = text_of(root, "UpdateDetail")
        if change_type == "update" and detail in {"add_member", "del_member"}:
            name = "group_join" if detail == "add_member" else "group_leave"
            members = _members(root)
            properties["staff_members"] = [m for m in members if not _is_external(m)]
            return [
                {
                    **common,
                    "event_id": f"{base_id}:{member}",
                    "name": name,
                    "user_id": f"wecom_external_userid:{member}",
                    "identifiers": {"wecom_external_userid": member},
                    "properties": properties,
                }
                for member in members
                if _is_external(member)
            ]
        name = {
            "create": "wecom_group_create",
            "update": "wecom_group_update",
            "dismiss": "wecom_group_dismiss",
        }[change_type]
        return [{**common, "event_id": base_id, "name": name, "properties": properties}]
    return []


def _is_external(userid: str) -> bool:
    return userid.startswith(EXTERNAL_USERID_PREFIXES)


def _identifiers(root: Element, external: str | None) -> dict[str, str]:
    identifiers: dict[str, str] = {}
    if external:
        identifiers["wecom_external_userid"] = external
    for tag in ("UnionId", "UnionID", "unionid"):
        unionid = text_of(root, tag)
        if unionid:
            identifiers["unionid"] = unionid
            break
    return identifiers


def _pick(root: Element, names: dict[str, str]) -> dict[str, str]:
    picked = {}
    for tag, key in names.items():
        value = text_of(root, tag)
        if value is not None:
            picked[key] = value
    return picked


def _create_time(value: str | None) -> datetime:
    if value is None or not value.isdigit():
        raise WebhookPayloadError(
            N_("The event XML has no valid CreateTime"), what="event", reason="create_time"
        )
    return datetime.fromtimestamp(int(value), UTC)
