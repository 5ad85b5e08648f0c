"""Anomaly alerts: daily metrics against a seasonal baseline, alert rules, delivery."""
