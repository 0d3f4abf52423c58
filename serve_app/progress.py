"""What the command line shows: progress bars while files are in flight (rich), then summary tables.

``QuietView`` shows nothing (``--json``): the run reports through the same three calls either way.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from serve_app.upload import Entry

FOLDERS = ("good_quality", "upscaled", "couldn't_upscale")
STYLE = {"success": "green", "skipped": "cyan", "error": "red", "refused": "red", "cancelled": "yellow"}
LABEL = {"queued": "queued", "running": "processing", "waiting": "waiting"}


class QuietView:
    def started(self, entry: Entry) -> None: ...
    def update(self, entry: Entry) -> None: ...
    def finished(self, entry: Entry) -> None: ...
    def waiting(self, seconds: float, error: BaseException | None) -> None: ...


class BarsView:
    """A bar per file in flight (hidden when it ends, its outcome printed above) and one for the total."""

    def __init__(self, console: Console, total: int) -> None:
        self.console = console
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            BarColumn(bar_width=None),
            MofNCompleteColumn(),
            TextColumn("{task.fields[state]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            expand=True,
        )
        self.total = self.progress.add_task("all files", total=total, state="")
        self.tasks: dict[int, TaskID] = {}

    def __enter__(self) -> BarsView:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def _task(self, entry: Entry) -> TaskID:
        if id(entry) not in self.tasks:
            name = entry.path.name if len(entry.path.name) <= 40 else entry.path.name[:37] + "…"
            state = LABEL.get(entry.status, "")
            self.tasks[id(entry)] = self.progress.add_task(name, total=None, state=state)  # None: a pulse
        return self.tasks[id(entry)]

    def started(self, entry: Entry) -> None:
        self._task(entry)

    def update(self, entry: Entry) -> None:
        self.progress.update(self._task(entry), state=LABEL.get(entry.status, entry.status))

    def waiting(self, seconds: float, error: BaseException | None) -> None:
        """The service said "not now" (429 or 503): shown on the total's bar until the next answer."""
        why = f" ({error})" if error else ""
        self.progress.update(self.total, state=f"waiting {seconds:.0f} s{why}")

    def finished(self, entry: Entry) -> None:
        task = self.tasks.pop(id(entry), None)
        if task is not None:
            self.progress.remove_task(task)
        style = STYLE.get(entry.status, "")
        where = f"→ {entry.folder}/" if entry.folder else ""
        message = f"  {entry.message}" if entry.message and entry.failed else ""
        self.progress.console.print(
            f"[{style}]{entry.status:>9}[/{style}] {entry.path.name} {where}{message}", markup=True, highlight=False
        )
        self.progress.update(self.total, state="")  # a wait, if one was shown, is over
        self.progress.advance(self.total)


def summary(entries: list[Entry], seconds: float) -> dict[str, Any]:
    folders = Counter(e.folder for e in entries if e.folder and e.status in ("success", "skipped", "error"))
    statuses = Counter(e.status for e in entries)
    return {
        "files": len(entries),
        "succeeded": statuses["success"],
        "skipped": statuses["skipped"],
        "failed": sum(e.failed for e in entries),
        "per_folder": {f: folders.get(f, 0) for f in FOLDERS},
        "seconds": round(seconds, 2),
    }


def print_summary(console: Console, entries: list[Entry], totals: dict[str, Any]) -> None:
    table = Table(title="Summary", title_justify="left", show_edge=False)
    table.add_column("folder")
    table.add_column("files", justify="right")
    for folder, n in totals["per_folder"].items():
        table.add_row(f"{folder}/", str(n))
    table.add_section()
    table.add_row("succeeded", f"[green]{totals['succeeded']}[/green]")
    table.add_row("skipped (done before)", str(totals["skipped"]))
    table.add_row("failed", f"[red]{totals['failed']}[/red]" if totals["failed"] else "0")
    table.add_row("time", f"{totals['seconds']:.1f} s")
    console.print(table)
    failures = [e for e in entries if e.failed]
    if failures:
        problems = Table(title="Failures", title_justify="left", show_edge=False)
        problems.add_column("file", overflow="fold")
        problems.add_column("status")
        problems.add_column("message", overflow="fold")
        for entry in failures:
            problems.add_row(str(entry.path), entry.status, entry.message or "")
        console.print(problems)
