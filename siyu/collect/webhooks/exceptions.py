"""Errors of the inbound webhooks; each carries the endpoint it is about."""

from __future__ import annotations

from siyu.core.errors import AuthenticationError, NotFoundError, SiyuError
from siyu.core.i18n import N_


class WebhookEndpointNotFoundError(NotFoundError):
    """No endpoint of that id (and kind): the caller gets 404, whatever the reason."""

    code = "webhook_endpoint_not_found"
    title = N_("Webhook endpoint not found")


class WebhookSignatureError(AuthenticationError):
    """The delivery is not signed by the endpoint's secret; nothing of it is stored."""

    code = "webhook_signature_invalid"
    title = N_("Invalid webhook signature")


class WebhookPayloadError(SiyuError):
    """The body cannot be read (malformed XML or JSON, missing fields, unsafe XML)."""

    code = "webhook_payload_invalid"
    status = 400
    title = N_("Malformed webhook payload")


class WebhookPayloadTooLargeError(SiyuError):
    code = "webhook_payload_too_large"
    status = 413
    title = N_("Webhook payload too large")


class WebhookConfigError(SiyuError):
    """An endpoint definition (keys, mapping) cannot be used."""

    code = "webhook_config_invalid"
    status = 422
    title = N_("Invalid webhook configuration")


class WebhookSecretError(SiyuError):
    """A stored secret cannot be decrypted: the secret key changed since it was stored."""

    code = "webhook_secret_unreadable"
    status = 500
    title = N_("Webhook secret unreadable")
