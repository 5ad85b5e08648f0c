"""Telling people about an alert: a webhook (JSON POST), an email, a WeCom group robot.

The WeCom group robot takes ``POST {SIYU_WECOM_ROBOT_URL}?key=KEY`` with a JSON body
``{"msgtype": "markdown", "markdown": {"content": …}}`` and answers ``{"errcode": 0,
"errmsg": "ok"}``; any other errcode is a failure. Each delivery is recorded with its
outcome; a failed one is retried on the next run, a delivered one never again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from siyu.core.clock import utcnow
from siyu.core.config import Settings
from siyu.core.errors import SiyuError
from siyu.core.mail import send_mail

TIMEOUT = httpx.Timeout(10.0)


def target_id(target: dict[str, Any]) -> str:
    return f"{target['kind']}:{target['address']}"


def deliver(
    settings: Settings, target: dict[str, Any], payload: dict[str, Any], text: str, title: str
) -> dict[str, Any]:
    """Send one alert to one target; the outcome as a delivery record."""
    at: datetime = utcnow()
    try:
        if target["kind"] == "webhook":
            _webhook(target["address"], payload)
        elif target["kind"] == "email":
            send_mail(settings, [target["address"]], title, text)
        else:
            _wecom_robot(settings, target["address"], f"**{title}**\n{text}")
    except (httpx.HTTPError, SiyuError, ValueError) as exc:
        reason = exc.render() if isinstance(exc, SiyuError) else str(exc) or type(exc).__name__
        return {"target": target_id(target), "ok": False, "error": reason, "at": at.isoformat()}
    return {"target": target_id(target), "ok": True, "error": None, "at": at.isoformat()}


def _webhook(url: str, payload: dict[str, Any]) -> None:
    answer = httpx.post(url, json=payload, timeout=TIMEOUT)
    answer.raise_for_status()


def _wecom_robot(settings: Settings, key: str, markdown: str) -> None:
    answer = httpx.post(
        settings.wecom_robot_url,
        params={"key": key},
        json={"msgtype": "markdown", "markdown": {"content": markdown[:4096]}},
        timeout=TIMEOUT,
    )
    answer.raise_for_status()
    body = answer.json()
    if body.get("errcode") != 0:
        raise ValueError(f"WeCom robot errcode {body.get('errcode')}: {body.get('errmsg')}")
