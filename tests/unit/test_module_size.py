"""No module of the package passes 650 lines (migrations aside): past about 600 a module is
usually two subjects (DESIGN.md §2), and a reader should be able to hold one in mind."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "datamgmt"
LIMIT = 650


def test_no_module_is_over_the_limit() -> None:
    sizes = {
        path.relative_to(PACKAGE.parent).as_posix(): len(path.read_text().splitlines())
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.parts
    }
    assert len(sizes) > 100, "the walk must see the whole package"
    over = {path: lines for path, lines in sizes.items() if lines > LIMIT}
    assert not over, f"modules over {LIMIT} lines: {over}"
