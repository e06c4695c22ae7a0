"""Progress bars for uploads and downloads: one per file in flight plus an overall bar.

They are drawn only when stdout is a terminal, so pipes, logs and ``--json`` stay clean.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from datamgmt.client.transfers import NullProgress, ProgressSink

OVERALL = "total"


class RichProgress:
    """A :class:`ProgressSink` drawing rich bars; safe to call from the transfer threads."""

    def __init__(self, progress: Progress, total_bytes: int, files: int) -> None:
        self.progress = progress
        self.overall = progress.add_task(f"{OVERALL} ({files} files)", total=total_bytes)
        self._tasks: dict[str, TaskID] = {}
        self._done: dict[str, int] = {}
        self._totals: dict[str, int] = {}
        self._lock = threading.Lock()

    def file_started(self, label: str, total: int) -> None:
        with self._lock:
            self._tasks[label] = self.progress.add_task(label, total=total)
            self._done[label] = 0
            self._totals[label] = total

    def file_advanced(self, label: str, done: int) -> None:
        with self._lock:
            # A retried replica starts again at zero: the overall bar follows the difference.
            self.progress.advance(self.overall, done - self._done[label])
            self._done[label] = done
            self.progress.update(self._tasks[label], completed=done)

    def file_finished(self, label: str, ok: bool) -> None:
        with self._lock:
            # Finished (or failed) files leave the screen; the overall bar counts them as done.
            self.progress.advance(self.overall, self._totals.pop(label) - self._done.pop(label))
            self.progress.remove_task(self._tasks.pop(label))


def show_bars(as_json: bool) -> bool:
    return not as_json and sys.stdout.isatty()


@contextmanager
def transfer_progress(enabled: bool, total_bytes: int, files: int) -> Iterator[ProgressSink]:
    """Bars on the terminal while the block runs, or a sink that draws nothing."""
    if not enabled:
        yield NullProgress()
        return
    columns = (
        TextColumn("{task.description}", justify="left"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(file=sys.stdout), transient=False) as progress:
        yield RichProgress(progress, total_bytes, files)
