"""``core/cache.FileGeneration``: the generation every process of a host shares with the memory
backend, read with one stat(2) and renewed by a one-byte append."""

from __future__ import annotations

from pathlib import Path

from datamgmt.core.cache import FileGeneration


def test_a_renewal_is_seen_by_every_reader_and_no_generation_comes_back(tmp_path: Path) -> None:
    path = tmp_path / "not-yet" / "token.generation"
    mine, other_process = FileGeneration(path), FileGeneration(path)
    first = mine.current()  # made on first use, folder included
    assert other_process.current() == first == mine.current()
    seen = {first}
    for _ in range(50):
        other_process.renew()
        now = mine.current()
        assert now not in seen
        seen.add(now)
    assert path.stat().st_size == 51, "one byte per renewal"


def test_a_file_removed_and_made_again_starts_a_new_line_of_generations(tmp_path: Path) -> None:
    path = tmp_path / "token.generation"
    generation = FileGeneration(path)
    before = {generation.current()}
    for _ in range(3):
        generation.renew()
        before.add(generation.current())
    keep = tmp_path / "keep"  # hold the old inode, so the new file cannot take its number
    path.rename(keep)
    assert generation.current() not in before
