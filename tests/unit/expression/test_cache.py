"""The expression cache: hits skip the database, and committed RSE changes invalidate at once,
on the per-process memory backend and on a Redis shared between processes."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager

import pytest
import redis
from dogpile.cache.backends.memcached import PyMemcacheBackend
from dogpile.cache.backends.memory import MemoryBackend
from dogpile.cache.backends.redis import RedisBackend
from sqlalchemy.orm import Session

from datamgmt.config import PROJECT_ROOT, Config
from datamgmt.core import expression, rse
from datamgmt.core.cache import BoundedDict, make_region
from datamgmt.core.db.session import catalogue_of, session_factory
from datamgmt.core.expression import ExpressionCache, parse_expression
from datamgmt.exceptions import ConfigurationError
from tests.statements import captured

REDIS_URL = "redis://127.0.0.1:6379/15"  # a database of its own; every test uses its own key prefix


def names(records: list[dict]) -> list[str]:
    return [record["rse"] for record in records]


def counted_statements(session: Session) -> AbstractContextManager[list[str]]:
    return captured(session.get_bind(), lambda _cursor, statement, _: statement)


def selects(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith("SELECT")]


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis server at 127.0.0.1:6379")
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


def redis_region(prefix: str):
    return make_region("rse_expression", backend="redis", url=REDIS_URL, expiration_time=600, prefix=prefix)


# --- memory ----------------------------------------------------------------------------------
def test_a_hit_runs_no_query_and_a_miss_runs_two(five):
    with counted_statements(five) as first:
        parse_expression(five, "T1&country=de")
    with counted_statements(five) as second:
        assert names(parse_expression(five, "T1&country=de")) == ["R2"]
    assert len(selects(first)) == 2
    assert second == []


def test_freespace_costs_two_more_queries_only_when_named(five):
    with counted_statements(five) as statements:
        parse_expression(five, "freespace>1")
    assert len(selects(statements)) == 4


def test_misses_reuse_the_snapshot_of_their_generation(five):
    """The first call of a generation loads the snapshot; later misses evaluate it in memory,
    and free space is computed once, by the first expression that names it."""
    parse_expression(five, "T1")
    with counted_statements(five) as statements:
        assert names(parse_expression(five, "country=uk|num<20")) == ["R1", "R4"]
        assert names(parse_expression(five, "T2\\R5")) == ["R4"]
    assert statements == []
    with counted_statements(five) as statements:
        assert names(parse_expression(five, "freespace>4")) == ["R1"]
        assert names(parse_expression(five, "freespace<=2")) == ["R2"]
    assert len(selects(statements)) == 2
    cache = expression.current_cache()
    assert cache.get(catalogue_of(five), cache.generation(), "T2\\R5") == (rse.get_rse_id(five, "R4"),)


def test_a_new_generation_reloads_the_snapshot_once(five):
    parse_expression(five, "T1")
    rse.add_rse(five, "R6")
    rse.add_rse_attribute(five, "R6", "T1", True)
    five.commit()
    with counted_statements(five) as statements:
        assert names(parse_expression(five, "T1")) == ["R1", "R2", "R3", "R6"]
        assert names(parse_expression(five, "T1&R6")) == ["R6"]
    assert len(selects(statements)) == 2


# --- Redis -----------------------------------------------------------------------------------
def test_redis_cache_hits_and_invalidates(five, redis_prefix):
    expression.set_cache_region(redis_region(redis_prefix))
    assert names(parse_expression(five, "T1\\R3")) == ["R1", "R2"]
    with counted_statements(five) as statements:
        assert names(parse_expression(five, "T1\\R3")) == ["R1", "R2"]
    assert statements == []
    rse.add_rse_attribute(five, "R3", "T1", False)
    five.commit()
    assert names(parse_expression(five, "T1")) == ["R1", "R2"]


def test_two_processes_sharing_redis_see_each_others_invalidation(five, redis_prefix):
    """Two regions on one Redis stand for two processes: what one caches the other reads,
    and a change committed in one is invisible to neither an instant later."""
    here, there = ExpressionCache(redis_region(redis_prefix)), ExpressionCache(redis_region(redis_prefix))
    expression.set_cache_region(here.region)
    assert names(parse_expression(five, "country=fr")) == ["R3"]
    assert there.get(catalogue_of(five), there.generation(), "country=fr") == (rse.get_rse_id(five, "R3"),)

    rse.add_rse_attribute(five, "R5", "country", "fr")
    five.commit()  # the listener invalidates through ``here``
    assert there.get(catalogue_of(five), there.generation(), "country=fr") is None

    assert names(parse_expression(five, "country=fr")) == ["R3", "R5"]
    there.invalidate()  # a change committed over there
    assert here.get(catalogue_of(five), here.generation(), "country=fr") is None


def test_a_change_committed_by_another_process_invalidates_at_once(five, db, redis_prefix):
    """A real second process, configured for the same Redis, changes an attribute."""
    expression.set_cache_region(redis_region(redis_prefix))
    assert names(parse_expression(five, "country=uk")) == ["R4"]
    five.commit()  # release SQLite's lock for the other process
    script = (
        "from datamgmt.core import expression, rse\n"
        "from datamgmt.core.db.session import session_factory\n"
        "s = session_factory()()\n"
        "rse.add_rse_attribute(s, 'R1', 'country', 'uk')\n"
        "s.commit()\n"
    )
    env = dict(
        os.environ,
        DATAMGMT_DATABASE_URL=db,
        DATAMGMT_CACHE_BACKEND="redis",
        DATAMGMT_CACHE_URL=REDIS_URL,
        DATAMGMT_CACHE_PREFIX=redis_prefix,
    )
    subprocess.run([sys.executable, "-c", script], env=env, cwd=PROJECT_ROOT, check=True, timeout=120)
    assert names(parse_expression(five, "country=uk")) == ["R1", "R4"]


def test_another_process_invalidating_makes_this_one_reload(five, redis_prefix):
    here, there = ExpressionCache(redis_region(redis_prefix)), ExpressionCache(redis_region(redis_prefix))
    expression.set_cache_region(here.region)
    assert names(parse_expression(five, "country=de")) == ["R2"]
    there.invalidate()
    with counted_statements(five) as statements:
        assert names(parse_expression(five, "country=de")) == ["R2"]
    assert len(selects(statements)) == 2


def test_changing_an_attribute_invalidates_at_once(five):
    assert names(parse_expression(five, "country=fr")) == ["R3"]
    rse.add_rse_attribute(five, "R4", "country", "fr")
    five.commit()
    assert names(parse_expression(five, "country=fr")) == ["R3", "R4"]
    rse.del_rse_attribute(five, "R3", "country")
    five.commit()
    assert names(parse_expression(five, "country=fr")) == ["R4"]


def test_changing_availability_invalidates_at_once(five):
    assert names(parse_expression(five, "T2", for_write=True)) == ["R4"]
    rse.update_rse(five, "R5", {"availability_write": True})
    five.commit()
    assert names(parse_expression(five, "T2", for_write=True)) == ["R4", "R5"]


def test_changing_usage_or_limits_invalidates_freespace(five):
    assert names(parse_expression(five, "freespace>4")) == ["R1"]
    rse.set_rse_usage(five, "R2", "srm", used=1, free=10 * 10**12)
    five.commit()
    assert names(parse_expression(five, "freespace>4")) == ["R1", "R2"]
    rse.set_rse_limits(five, "R2", "MinFreeSpace", 7 * 10**12)
    five.commit()
    assert names(parse_expression(five, "freespace>4")) == ["R1"]


def test_uncommitted_changes_are_seen_by_their_session_only_and_never_cached(five, db):
    assert names(parse_expression(five, "T2")) == ["R4", "R5"]
    rse.add_rse_attribute(five, "R1", "T2", True)
    assert names(parse_expression(five, "T2")) == ["R1", "R4", "R5"]
    five.rollback()
    other = session_factory(db)()
    try:
        assert names(parse_expression(other, "T2")) == ["R4", "R5"]
    finally:
        other.close()


def test_callers_cannot_alter_the_cached_result(five):
    parse_expression(five, "R1")[0]["rse"] = "MANGLED"
    assert names(parse_expression(five, "R1")) == ["R1"]


def test_invalidate_cache_forgets_results(five):
    cache = expression.current_cache()
    parse_expression(five, "R1")
    generation = cache.generation()
    assert cache.get(catalogue_of(five), generation, "R1") is not None
    expression.invalidate_cache()
    assert cache.generation() != generation
    assert cache.get(catalogue_of(five), cache.generation(), "R1") is None


# --- the region factory ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("backend", "backend_class"),
    [("memory", MemoryBackend), ("redis", RedisBackend), ("memcached", PyMemcacheBackend)],
)
def test_backend_follows_the_configuration(backend, backend_class):
    config = Config(path=PROJECT_ROOT / "no-such.cfg", environ={"DATAMGMT_CACHE_BACKEND": backend})
    region = make_region("probe", config=config)
    assert isinstance(region.backend, backend_class)
    assert region.key_mangler("k") == "datamgmt:probe:k"
    assert region.expiration_time == 600


def test_unknown_backend_is_a_configuration_error():
    config = Config(path=PROJECT_ROOT / "no-such.cfg", environ={"DATAMGMT_CACHE_BACKEND": "couchbase"})
    with pytest.raises(ConfigurationError, match="couchbase"):
        make_region("probe", config=config)


def test_memory_backend_is_bounded():
    bounded = BoundedDict(2)
    for key in "abc":
        bounded[key] = key
    assert list(bounded) == ["b", "c"]


def test_cached_ids_of_vanished_rses_are_recomputed(five):
    """Ids another process cached just before an RSE was deleted are not trusted."""
    cache = expression.current_cache()
    cache.set(catalogue_of(five), cache.generation(), "R1", ("no-such-id",))
    assert names(parse_expression(five, "R1")) == ["R1"]


def test_a_repeated_expression_is_answered_from_its_snapshot(five):
    """A process answers an expression it resolved in this generation from the snapshot's own
    memory: neither the cache backend nor the RSE names are asked again."""
    first = expression.rse_names_for(five, "T1&country=de")
    cache = expression.current_cache()
    cache.set(catalogue_of(five), cache.generation(), "T1&country=de", (rse.get_rse_id(five, "R5"),))
    again = expression.rse_names_for(five, "T1&country=de")
    assert again == ("R2",) and again is first
    expression.invalidate_cache()  # a new generation, a new snapshot: resolved afresh
    assert expression.rse_names_for(five, "R5") == ("R5",)
