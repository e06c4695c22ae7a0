"""Subscription tests run on the rule tests' catalogue: account ``jdoe``, scope ``mock``,
RSEs R1..R4 (T1 on R1, R2, R4; T2 on R3)."""

from __future__ import annotations

from tests.unit.rules.conftest import cat

__all__ = ["cat"]
