"""Privacy and access: console users and roles.

Consent, PII encryption, audit and DSAR come later.
"""
