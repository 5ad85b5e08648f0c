"""Collect: the tracking API, bulk import and inbound webhooks (WeCom, orders)."""
