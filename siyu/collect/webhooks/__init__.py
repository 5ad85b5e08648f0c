"""Inbound webhooks: WeCom (企业微信) callbacks and signed order webhooks, turned into events.

Endpoints live in the ``webhook_endpoint`` table with their secrets sealed at rest; every
delivery is verified before anything is read from it, and maps to event rows whose ids are
derived from the content, so a sender's retries are skipped by the event store. The routes are
in :mod:`siyu.collect.webhooks.router`, the commands in :mod:`siyu.collect.webhooks.cli`.
"""

from siyu.collect.webhooks.models import WebhookEndpoint, WebhookKind

__all__ = ["WebhookEndpoint", "WebhookKind"]
