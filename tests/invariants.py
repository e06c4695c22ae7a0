"""One rule-invariant checker for every test: the catalogue checker of ``datamgmt-admin check``.

Unit and integration tests call :func:`check_invariants` on the session they work in (at a
quiet moment of the test); ``tests/conftest.py`` runs the same checker on the committed
catalogue after every test that used one.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from datamgmt.core.invariants import check_catalogue


def check_invariants(session: Session, *broken_on_purpose: str) -> None:
    """Fail unless the catalogue as ``session`` sees it holds every invariant of
    :func:`datamgmt.core.invariants.check_catalogue`, except those named (a test that breaks
    one on purpose names it)."""
    session.flush()
    report = check_catalogue(session)
    report.violations = [v for v in report.violations if v.invariant not in broken_on_purpose]
    assert report.ok, f"the catalogue violates its invariants:\n{report.render()}"
