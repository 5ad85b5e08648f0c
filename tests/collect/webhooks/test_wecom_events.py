"""Every WeCom customer-contact and customer-group callback becomes the expected event rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from siyu.collect.webhooks.exceptions import WebhookPayloadError
from siyu.collect.webhooks.service import events_table
from siyu.collect.webhooks.wecom_events import callback_rows, envelope_encrypt, parse_xml
from siyu.events import conform

CORP = "ww1436e0e65a779aee"
TS = datetime.fromtimestamp(1403610513, UTC)


def contact(change_type: str, extra: str = "") -> bytes:
    return (
        "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>"
        "<FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1403610513</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event>"
        f"<ChangeType><![CDATA[{change_type}]]></ChangeType><UserID><![CDATA[zhangsan]]></UserID>"
        "<ExternalUserID><![CDATA[woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA]]></ExternalUserID>"
        f"{extra}</xml>"
    ).encode()


def chat(change_type: str, extra: str = "") -> bytes:
    return (
        "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>"
        "<FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1403610513</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_chat]]></Event>"
        "<ChatId><![CDATA[wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA]]></ChatId>"
        f"<ChangeType><![CDATA[{change_type}]]></ChangeType>{extra}</xml>"
    ).encode()


def rows(message: bytes) -> list[dict[str, object]]:
    return callback_rows(message, corp_id=CORP, endpoint_id="wh_1")


EXTERNAL = "woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA"


def test_add_external_contact() -> None:
    message = contact(
        "add_external_contact",
        "<State><![CDATA[live_0601]]></State><WelcomeCode><![CDATA[WELCOMECODE]]></WelcomeCode>",
    )

    [row] = rows(message)

    assert row["name"] == "wecom_add_contact"
    assert row["ts"] == TS
    assert row["channel"] == "wecom"
    assert row["user_id"] == f"wecom_external_userid:{EXTERNAL}"
    assert row["identifiers"] == {"wecom_external_userid": EXTERNAL}
    assert row["properties"] == {
        "wecom_event": "change_external_contact",
        "change_type": "add_external_contact",
        "corp_id": CORP,
        "webhook_endpoint": "wh_1",
        "staff_userid": "zhangsan",
        "state": "live_0601",
        "welcome_code": "WELCOMECODE",
    }
    assert str(row["event_id"]).startswith("wecom:")


@pytest.mark.parametrize(
    ("change_type", "name", "extra_properties"),
    [
        ("edit_external_contact", "wecom_edit_contact", {}),
        ("add_half_external_contact", "wecom_add_half_contact", {}),
        ("del_external_contact", "wecom_delete_contact", {"deleted_by": "staff"}),
        ("del_follow_user", "wecom_delete_contact", {"deleted_by": "customer"}),
    ],
)
def test_other_contact_changes(
    change_type: str, name: str, extra_properties: dict[str, str]
) -> None:
    [row] = rows(contact(change_type))

    assert row["name"] == name
    assert row["user_id"] == f"wecom_external_userid:{EXTERNAL}"
    properties = row["properties"]
    assert isinstance(properties, dict)
    assert properties["change_type"] == change_type
    assert properties["staff_userid"] == "zhangsan"
    for key, value in extra_properties.items():
        assert properties[key] == value


def test_delete_by_transfer_keeps_the_source() -> None:
    [row] = rows(contact("del_external_contact", "<Source><![CDATA[DELETE_BY_TRANSFER]]></Source>"))
    assert row["properties"]["delete_source"] == "DELETE_BY_TRANSFER"  # type: ignore[index]


def test_unionid_is_an_identifier_when_present() -> None:
    [row] = rows(contact("add_external_contact", "<UnionId><![CDATA[oU_union_1]]></UnionId>"))
    assert row["identifiers"] == {"wecom_external_userid": EXTERNAL, "unionid": "oU_union_1"}


def test_group_create_update_dismiss() -> None:
    [created] = rows(chat("create"))
    [renamed] = rows(chat("update", "<UpdateDetail><![CDATA[change_name]]></UpdateDetail>"))
    [dismissed] = rows(chat("dismiss"))

    assert (created["name"], renamed["name"], dismissed["name"]) == (
        "wecom_group_create",
        "wecom_group_update",
        "wecom_group_dismiss",
    )
    assert created["properties"]["chat_id"] == "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA"  # type: ignore[index]
    assert renamed["properties"]["update_detail"] == "change_name"  # type: ignore[index]
    assert "user_id" not in created


def test_group_add_member_gives_one_group_join_per_customer() -> None:
    message = chat(
        "update",
        "<UpdateDetail><![CDATA[add_member]]></UpdateDetail><JoinScene>3</JoinScene>"
        "<QuitScene>0</QuitScene><MemChangeCnt>3</MemChangeCnt>"
        "<MemChangeList><Item>wmAAA1</Item><Item>staff_li</Item><Item>wmBBB2</Item>"
        "</MemChangeList><LastMemVer>v1</LastMemVer><CurMemVer>v2</CurMemVer>",
    )

    joined = rows(message)

    assert [r["name"] for r in joined] == ["group_join", "group_join"]
    assert [r["user_id"] for r in joined] == [
        "wecom_external_userid:wmAAA1",
        "wecom_external_userid:wmBBB2",
    ]
    assert joined[0]["identifiers"] == {"wecom_external_userid": "wmAAA1"}
    properties = joined[0]["properties"]
    assert isinstance(properties, dict)
    assert properties["join_scene"] == "3"
    assert properties["member_change_count"] == "3"
    assert properties["staff_members"] == ["staff_li"]
    assert properties["current_member_version"] == "v2"
    assert len({r["event_id"] for r in joined}) == 2


def test_group_del_member_old_comma_form() -> None:
    message = chat(
        "update",
        "<UpdateDetail><![CDATA[del_member]]></UpdateDetail><QuitScene>1</QuitScene>"
        "<MemChangeList><![CDATA[wmAAA1,wmBBB2]]></MemChangeList>",
    )

    left = rows(message)

    assert [(r["name"], r["user_id"]) for r in left] == [
        ("group_leave", "wecom_external_userid:wmAAA1"),
        ("group_leave", "wecom_external_userid:wmBBB2"),
    ]


def test_other_callbacks_are_not_stored() -> None:
    text = (
        b"<xml><ToUserName>ww1</ToUserName><FromUserName>li</FromUserName>"
        b"<CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>hi</Content></xml>"
    )
    assert rows(text) == []
    assert rows(contact("transfer_fail")) == []


def test_event_id_is_deterministic_and_depends_on_content() -> None:
    first = rows(contact("add_external_contact"))[0]["event_id"]
    again = rows(contact("add_external_contact"))[0]["event_id"]
    other = rows(contact("edit_external_contact"))[0]["event_id"]
    other_corp = callback_rows(contact("add_external_contact"), corp_id="ww2", endpoint_id="x")

    assert first == again
    assert first != other
    assert first != other_corp[0]["event_id"]


def test_rows_fit_the_event_schema() -> None:
    table = conform(events_table(rows(contact("add_external_contact"))))

    assert table.num_rows == 1
    row = table.to_pylist()[0]
    assert row["name"] == "wecom_add_contact"
    assert json.loads(row["identifiers"]) == {"wecom_external_userid": EXTERNAL}
    assert "WELCOME" not in row["properties"]


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<xml><Encrypt>&lol3;</Encrypt></xml>"""

XXE = b"""<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<xml><Encrypt>&e;</Encrypt></xml>"""


@pytest.mark.parametrize("body", [BOMB, XXE], ids=["billion-laughs", "xxe"])
def test_entities_and_dtds_are_refused(body: bytes) -> None:
    with pytest.raises(WebhookPayloadError) as caught:
        envelope_encrypt(body)
    assert caught.value.status == 400
    assert caught.value.context["reason"] == "unsafe_xml"


@pytest.mark.parametrize("body", [b"", b"<xml>", b"not xml", b"<xml><Other/></xml>"])
def test_malformed_envelopes_are_400(body: bytes) -> None:
    with pytest.raises(WebhookPayloadError):
        envelope_encrypt(body)


def test_missing_create_time_is_400() -> None:
    with pytest.raises(WebhookPayloadError):
        rows(b"<xml><Event>change_external_contact</Event></xml>")


def test_parse_xml_reads_plain_xml() -> None:
    assert parse_xml(b"<xml><a>1</a></xml>", what="test").findtext("a") == "1"
