"""Which transfer tool a conveyor daemon talks to, and the one shared in-process tool.

``[conveyor] transfertool`` picks ``local`` (the embedded default) or ``fts3``.  An FTS request
goes to the destination RSE's ``fts`` attribute, else ``[conveyor] fts_host``; the poller finds
the same server again through the request's ``external_host``.

The local tool keeps its transfers in the catalogue
(:class:`~datamgmt.daemons.conveyor.local_transfers.CatalogueLocalTool`), so a poller in any
process sees them; its copies run in the submitter's process (:func:`local_tool` with
``copying``), and one instance per process shares the copy threads, which is why it is a
process-wide singleton rather than something each daemon builds.  A test may install another
tool with :func:`set_local_tool` (an in-memory :class:`LocalTransferTool`, for one process).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from datamgmt.config import get_config
from datamgmt.core.vo import DEFAULT_VO
from datamgmt.exceptions import ConfigurationError
from datamgmt.transfertool.base import TransferTool
from datamgmt.transfertool.fts3 import FTS3TransferTool
from datamgmt.transfertool.gfal2copy import Gfal2Options
from datamgmt.transfertool.local import LocalTransferTool

from .local_transfers import CatalogueLocalTool

LOCAL = "local"
FTS3 = "fts3"
TOOLS = (LOCAL, FTS3)

_lock = threading.Lock()
_local: TransferTool | None = None
#: The local tools of the other VOs' catalogues (core/vo.py), by VO.
_vo_local: dict[str, TransferTool] = {}
_fts: dict[str, FTS3TransferTool] = {}


def configured_tool() -> str:
    """``[conveyor] transfertool``, checked."""
    name = get_config().get("conveyor", "transfertool").strip().lower()
    if name not in TOOLS:
        raise ConfigurationError(f"[conveyor] transfertool must be one of {TOOLS}, not {name!r}")
    return name


def _gfal2_options() -> Gfal2Options:
    """gfal2 settings from ``[storage]``: the S3 keys the local tool copies with."""
    config = get_config()
    key, secret = config.get("storage", "s3_access_key"), config.get("storage", "s3_secret_key")
    if not key:
        return {}
    return {"S3": {"ACCESS_KEY": key, "SECRET_KEY": secret, "REGION": config.get("storage", "s3_region")}}


def local_tool(db_url: str | None = None, *, copying: bool = False, vo: str = DEFAULT_VO) -> TransferTool:
    """The process's local tool for ``vo``'s catalogue at ``db_url``, built from the configuration
    on first use; with ``copying`` (the submitter) it also runs copies in this process,
    ``[conveyor] local_threads`` at a time.  Each VO's transfers live in its own catalogue, so
    each VO has its own tool."""
    global _local
    config = get_config()
    with _lock:
        tool = _local if vo == DEFAULT_VO else _vo_local.get(vo)
        if tool is None:
            tool = CatalogueLocalTool(
                db_url,
                lease_seconds=config.get_int("conveyor", "local_lease_seconds"),
                staging_seconds=config.get_float("conveyor", "local_staging_seconds", 0.0),
                archive_seconds=config.get_float("conveyor", "local_archive_seconds", 0.0),
            )
            if vo == DEFAULT_VO:
                _local = tool
            else:
                _vo_local[vo] = tool
    if copying and isinstance(tool, CatalogueLocalTool) and not tool.copying:
        threads = config.get_int("conveyor", "local_threads")
        tool.start_copying(LocalTransferTool(threads=threads, gfal2_options=_gfal2_options()), threads)
    return tool


def set_local_tool(tool: TransferTool | None) -> TransferTool | None:
    """Install ``tool`` as the shared one (None: forget it); returns the previous one, not closed."""
    global _local
    with _lock:
        previous, _local = _local, tool
        return previous


def fts_endpoint(rse_endpoint: str | None) -> str:
    """The destination's ``fts`` attribute, else ``[conveyor] fts_host``."""
    endpoint = rse_endpoint or get_config().get("conveyor", "fts_host").strip()
    if not endpoint:
        raise ConfigurationError(
            "no FTS endpoint: set the destination RSE's fts attribute or [conveyor] fts_host"
        )
    return endpoint.rstrip("/")


def fts_credentials() -> dict[str, Any]:
    """The FTS3 client's credentials from ``[conveyor]``: ``fts_proxy`` (an X.509 proxy, used as
    certificate and key) or ``fts_cert`` and ``fts_key``; ``fts_token_file`` (a bearer token,
    read when the client is built); ``fts_ca_path`` (CA directory or bundle for https).  Files
    named must exist, so a typo is a configuration error at start, not a failed transfer."""
    config = get_config()
    option = {
        name: config.get("conveyor", name).strip()
        for name in ("fts_proxy", "fts_cert", "fts_key", "fts_token_file", "fts_ca_path")
    }
    if option["fts_proxy"] and option["fts_cert"]:
        raise ConfigurationError("[conveyor] set fts_proxy or fts_cert/fts_key, not both")
    for name, path in option.items():
        if path and not os.path.exists(path):
            raise ConfigurationError(f"[conveyor] {name}: no such file or directory {path!r}")
    cert = option["fts_proxy"] or option["fts_cert"] or None
    token = None
    if option["fts_token_file"]:
        with open(option["fts_token_file"], encoding="utf-8") as handle:
            token = handle.read().strip() or None
    return {
        "cert": cert,
        "key": option["fts_key"] or cert,
        "token": token,
        "ca_path": option["fts_ca_path"] or None,
    }


def fts_tool(endpoint: str) -> FTS3TransferTool:
    """One client per FTS endpoint per process (it caches the server's identity)."""
    with _lock:
        tool = _fts.get(endpoint)
        if tool is None:
            config = get_config()
            tool = FTS3TransferTool(
                endpoint,
                max_files_per_job=config.get_int("conveyor", "files_per_job"),
                timeout=config.get_float("conveyor", "fts_timeout", 30.0),
                **fts_credentials(),
            )
            _fts[endpoint] = tool
        return tool


def tool_for(
    transfertool: str | None, external_host: str | None, db_url: str | None = None, vo: str = DEFAULT_VO
) -> TransferTool:
    """The tool that knows a request's external id (the poller's view); the local tool reads
    ``vo``'s catalogue at ``db_url``."""
    if transfertool == FTS3 and external_host:
        return fts_tool(external_host)
    return local_tool(db_url, vo=vo)


def reset() -> None:
    """Close and forget every tool of this process (tests, shutdown)."""
    global _local
    with _lock:
        tools: list[TransferTool] = [*_fts.values(), *([_local] if _local else []), *_vo_local.values()]
        _fts.clear()
        _vo_local.clear()
        _local = None
    for tool in tools:
        tool.close()
