"""docs/architecture.md names only paths that exist, so a newcomer's map never points at nothing."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_PATH = re.compile(r"`((?:datamgmt|tests|docs|bench|etc|bin)/[^`\s]*)`")


def named_paths(text: str) -> list[str]:
    """Every backquoted repository path in ``text``."""
    return sorted(set(_PATH.findall(text)))


def test_architecture_doc_names_existing_paths() -> None:
    paths = named_paths((ROOT / "docs" / "architecture.md").read_text())
    assert len(paths) > 30
    missing = [path for path in paths if not (ROOT / path).exists()]
    assert missing == []


def test_path_finder_sees_a_missing_path() -> None:
    assert named_paths("see `datamgmt/core/nowhere.py` and `docs/x.md`") == [
        "datamgmt/core/nowhere.py",
        "docs/x.md",
    ]
    assert not (ROOT / "datamgmt/core/nowhere.py").exists()
