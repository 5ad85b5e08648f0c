"""Deterministic assignment of people to variants by a salted hash.

``bucket = int(first 8 bytes of sha256("{salt}:{experiment_key}:{person_id}"), big-endian)
mod 10000``; variants own consecutive bucket ranges in the order they are defined, each as
wide as its weight (weight 50 → 5000 buckets). The same person gets the same variant on every
run, every machine and every engine, and changing one experiment's salt reshuffles it without
touching the others.

:func:`variant_of` computes it in Python (a single lookup); :func:`variant_expr` is the same
function as an Ibis expression, for assigning a whole set of people in the engine (DuckDB's
``sha256`` gives the digest as hex; its first 16 hex digits are the first 8 bytes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import ibis
import ibis.expr.types as ir

from siyu.analytics.experiments.models import BUCKETS, VariantSpec


def bucket_of(salt: str, experiment_key: str, person_id: str) -> int:
    digest = hashlib.sha256(f"{salt}:{experiment_key}:{person_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def cutoffs(variants: Sequence[VariantSpec]) -> list[tuple[int, str]]:
    """Each variant's exclusive upper bucket bound, in order (the last one is ``BUCKETS``)."""
    bounds: list[tuple[int, str]] = []
    upper = 0
    for variant in variants:
        upper += variant.buckets
        bounds.append((upper, variant.key))
    return bounds


def variant_of(
    salt: str, experiment_key: str, variants: Sequence[VariantSpec], person_id: str
) -> str:
    bucket = bucket_of(salt, experiment_key, person_id)
    for upper, key in cutoffs(variants):
        if bucket < upper:
            return key
    return variants[-1].key


def bucket_expr(person_id: ir.StringValue, salt: str, experiment_key: str) -> ir.IntegerValue:
    digest = (ibis.literal(f"{salt}:{experiment_key}:") + person_id).hexdigest("sha256")
    first_8_bytes = ("0x" + digest.substr(0, 16)).cast("uint64")
    bucket: ir.IntegerValue = (first_8_bytes % BUCKETS).cast("int64")
    return bucket


def variant_expr(
    person_id: ir.StringValue, salt: str, experiment_key: str, variants: Sequence[VariantSpec]
) -> ir.StringValue:
    bucket = bucket_expr(person_id, salt, experiment_key)
    bounds = cutoffs(variants)
    cases = [(bucket < upper, ibis.literal(key)) for upper, key in bounds[:-1]]
    variant: ir.StringValue = ibis.cases(*cases, else_=ibis.literal(bounds[-1][1]))
    return variant
