"""Accounts, identities, scopes, quotas and usage."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from datamgmt.client.transport import Transport, quoted


class AccountClient(Transport):
    def whoami(self) -> dict[str, Any]:
        """``GET /accounts/whoami`` answers 303 to the account itself, which requests follows."""
        return self.json("GET", "/accounts/whoami")

    def get_account(self, account: str) -> dict[str, Any]:
        return self.json("GET", f"/accounts/{quoted(account)}")

    def list_accounts(self, account_type: str | None = None) -> Iterator[dict[str, Any]]:
        params = {"account_type": account_type} if account_type else None
        return self.stream("GET", "/accounts/", params=params)

    def add_account(self, account: str, account_type: str = "USER", email: str | None = None) -> None:
        self.call("POST", f"/accounts/{quoted(account)}", body={"type": account_type, "email": email})

    def update_account(self, account: str, key: str, value: Any) -> None:
        self.call("PUT", f"/accounts/{quoted(account)}", body={key: value})

    def suspend_account(self, account: str) -> None:
        self.update_account(account, "status", "SUSPENDED")

    def unsuspend_account(self, account: str) -> None:
        self.update_account(account, "status", "ACTIVE")

    # --- identities -------------------------------------------------------------------------
    def list_identities(self, account: str) -> Iterator[dict[str, Any]]:
        return self.stream("GET", f"/accounts/{quoted(account)}/identities")

    def add_identity(
        self,
        account: str,
        identity: str,
        authtype: str,
        email: str | None = None,
        password: str | None = None,
        default: bool = False,
    ) -> None:
        body = {
            "identity": identity,
            "authtype": authtype,
            "email": email,
            "password": password,
            "default": default,
        }
        self.call("POST", f"/accounts/{quoted(account)}/identities", body=body)

    def delete_identity(self, account: str, identity: str, authtype: str) -> None:
        body = {"identity": identity, "authtype": authtype}
        self.call("DELETE", f"/accounts/{quoted(account)}/identities", body=body)

    def list_account_attributes(self, account: str) -> list[dict[str, str]]:
        """``[{"key": ..., "value": ...}]``; ``admin=true`` exempts the account from quotas."""
        return self.json("GET", f"/accounts/{quoted(account)}/attr/") or []

    # --- scopes -----------------------------------------------------------------------------
    def add_scope(self, account: str, scope: str) -> None:
        self.call("POST", f"/accounts/{quoted(account)}/scopes/{quoted(scope)}")

    def list_scopes(self, account: str | None = None) -> list[str]:
        path = f"/accounts/{quoted(account)}/scopes/" if account else "/scopes/"
        return list(self.stream("GET", path))

    # --- limits and usage -------------------------------------------------------------------
    def set_local_limit(self, account: str, rse: str, nbytes: int) -> None:
        """``nbytes = -1`` means unlimited."""
        self.call("POST", f"/accounts/{quoted(account)}/limits/local/{quoted(rse)}", body={"bytes": nbytes})

    def set_global_limit(self, account: str, rse_expression: str, nbytes: int) -> None:
        path = f"/accounts/{quoted(account)}/limits/global/{quoted(rse_expression)}"
        self.call("POST", path, body={"bytes": nbytes})

    def get_local_limits(self, account: str) -> dict[str, int]:
        return self.json("GET", f"/accounts/{quoted(account)}/limits/local") or {}

    def get_global_limits(self, account: str) -> dict[str, int]:
        return self.json("GET", f"/accounts/{quoted(account)}/limits/global") or {}

    def local_usage(self, account: str, rse: str | None = None) -> Iterator[dict[str, Any]]:
        """Usage next to limit and remaining bytes, one line per RSE."""
        suffix = f"/{quoted(rse)}" if rse else ""
        return self.stream("GET", f"/accounts/{quoted(account)}/usage/local{suffix}")

    def global_usage(self, account: str) -> Iterator[dict[str, Any]]:
        return self.stream("GET", f"/accounts/{quoted(account)}/usage/global")
