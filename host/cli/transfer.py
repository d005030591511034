"""`lab export` and `lab import`: move results between stores as JSON Lines, without duplicates."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.console import Console

from host.cli.context import lab_context
from host.errors import UsageError


def export(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(help="Only runs started from this date/time or age (7d).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Write runs and their trials as JSON Lines (stdout by default): `lab export > runs.jsonl`."""
    from host.report.dates import parse_when
    from host.store import open_store

    since_at = parse_when(since, "--since") if since else None
    err = Console(stderr=True)
    with open_store(lab_context(ctx).db_url) as store:
        if out is None:
            count = 0
            for line in store.export_lines(since_at):
                sys.stdout.write(line + "\n")
                count += 1
            sys.stdout.flush()
        else:
            count = _write_atomically(out, store.export_lines(since_at))
    err.print(f"exported {max(count - 1, 0)} record(s)" + (f" to {out}" if out else ""))


def _write_atomically(path: Path, lines: Iterable[str]) -> int:
    """Writes to a temporary file beside ``path`` and renames it: a failed export leaves no half file."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from exc
    count = 0
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            for line in lines:
                stream.write(line + "\n")
                count += 1
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return count


MAX_IMPORT_LINE = 64 << 20  # one record: a trial with its raw output and samples is far smaller
MAX_IMPORT_BYTES = 4 << 30


def _bounded_lines(stream: TextIO, source: str) -> list[str]:
    """The stream's lines, refused past MAX_IMPORT_LINE characters a line or MAX_IMPORT_BYTES in all
    (``lab import /dev/zero`` must not eat the machine's memory)."""
    lines: list[str] = []
    total = 0
    while line := stream.readline(MAX_IMPORT_LINE + 1):
        if len(line) > MAX_IMPORT_LINE:
            raise UsageError(f"{source}, line {len(lines) + 1}: longer than {MAX_IMPORT_LINE >> 20} MiB: not a lab export")
        total += len(line)
        if total > MAX_IMPORT_BYTES:
            raise UsageError(f"{source}: larger than {MAX_IMPORT_BYTES >> 30} GiB: split the export with --since")
        lines.append(line)
    return lines


def import_(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A file written by `lab export` (- for stdin).")],
) -> None:
    """Merge an export into this store; records already there are skipped, a bad line imports nothing."""
    from host.store import open_store

    source = "stdin" if str(path) == "-" else str(path)
    try:
        if source == "stdin":
            lines = _bounded_lines(sys.stdin, source)
        else:
            with path.open(encoding="utf-8") as stream:
                lines = _bounded_lines(stream, source)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UsageError(f"cannot read {source}: {reason}") from exc
    with open_store(lab_context(ctx).db_url) as store:
        summary = store.import_lines(lines, source)
    typer.echo(
        f"imported from {source}: {summary.runs_added} run(s) added ({summary.runs_present} already present), "
        f"{summary.trials_added} trial(s) added ({summary.trials_present} already present)"
    )


def register(app: typer.Typer) -> None:
    """Adds this module's command(s) to the root app."""
    app.command("export")(export)
    app.command("import")(import_)
