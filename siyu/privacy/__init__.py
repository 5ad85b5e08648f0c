"""Privacy and access: console users and roles (consent, PII encryption, audit and DSAR come later)."""
