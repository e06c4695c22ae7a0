"""What every module of pages shares: the blueprint, pagination, and the admin gate."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import Any

from flask import Blueprint, g, request
from sqlalchemy.orm import Session

from datamgmt.core.permission import has_permission
from datamgmt.exceptions import AccessDenied

PAGE = 100

bp = Blueprint("ui", __name__, url_prefix="/ui", template_folder="templates")


def current_page() -> int:
    """The ``page`` query argument (0 for none or nonsense: a bad page number is no error)."""
    try:
        return max(0, int(request.args.get("page", "0")))
    except ValueError:
        return 0


def page_of(items: Iterable[Any], page: int) -> tuple[list[Any], bool]:
    """One page of a streamed listing, and whether another follows."""
    found = list(islice(items, page * PAGE, (page + 1) * PAGE + 1))
    return found[:PAGE], len(found) > PAGE


def require_admin(catalogue: Session, what: str) -> None:
    """Admin pages are for root and admins (the policy's ``see_admin_pages``): anyone else gets
    AccessDenied, as over REST."""
    if not has_permission(catalogue, g.issuer, "see_admin_pages", {}):
        raise AccessDenied(f"Account {g.issuer} can not see {what}.")
