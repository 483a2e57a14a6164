"""`dcmwatch status`: what the daemon did and what waits, from its state database and folders.

Needs no running daemon and changes nothing: the journal is opened read-only, folders are only
counted. Shows counts, reasons and ages, never a file name (inbox names may carry PHI).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dcmwatch.config import Config
from dcmwatch.intake import NameFilter, walk
from dcmwatch.journal import FILENAME, open_readonly
from dcmwatch.store import WORK_DIR_NAME

HOUR = 3600.0
DAY = 86_400.0


def collect(config: Config, *, now: float | None = None) -> dict[str, Any]:
    """Everything `status` shows, as plain data (the --json output)."""
    now = time.time() if now is None else now
    db_path = config.paths.state / FILENAME
    db = open_readonly(db_path)
    try:
        return {
            "state_db": str(db_path),
            "at": _iso(now),
            "outcomes": {"last_hour": _outcomes(db, now - HOUR),
                         "last_day": _outcomes(db, now - DAY)},
            "quarantine_reasons": {"last_day": _reasons(db, now - DAY)},
            "queue": _queue(config),
            "heartbeat": _heartbeat(db, now, stale_after=3 * config.schedule.heartbeat_seconds),
        }
    finally:
        db.close()


def _outcomes(db: sqlite3.Connection, since: float) -> dict[str, int]:
    """Per outcome, plus `requeued`: files `dcmwatch requeue` sent back, counted when they went
    (their rows still say `quarantined`, which they were). Rows whose outcome is `requeued`
    (older journals, or a requeue without a row) count there only."""
    rows = db.execute(
        "SELECT outcome, COUNT(*) FROM files WHERE COALESCE(finished_at, claimed_at) >= ? "
        "AND outcome != 'requeued' GROUP BY outcome ORDER BY outcome", (since,),
    )
    out = {str(o): int(n) for o, n in rows}
    columns = {row[1] for row in db.execute("PRAGMA table_info(files)")}
    when = "COALESCE(requeued_at, CASE WHEN outcome = 'requeued' THEN finished_at END)" \
        if "requeued_at" in columns else "CASE WHEN outcome = 'requeued' THEN finished_at END"
    requeued = db.execute(
        f"SELECT COUNT(*) FROM files WHERE {when} >= ?", (since,)  # noqa: S608 - our own SQL
    ).fetchone()[0]
    if requeued:
        out["requeued"] = int(requeued)
    return dict(sorted(out.items()))


def _reasons(db: sqlite3.Connection, since: float) -> dict[str, int]:
    rows = db.execute(
        "SELECT COALESCE(reason, 'unknown'), COUNT(*) FROM files "
        "WHERE outcome = 'quarantined' AND finished_at >= ? GROUP BY 1 ORDER BY 2 DESC, 1",
        (since,),
    )
    return {str(r): int(n) for r, n in rows}


def _heartbeat(db: sqlite3.Connection, now: float, *,
               stale_after: float) -> dict[str, Any] | None:
    columns = {row[1] for row in db.execute("PRAGMA table_info(heartbeats)")}
    data_col = "data" if "data" in columns else "NULL"
    row = db.execute(
        f"SELECT at, queue_depth, processed, quarantined, {data_col} FROM heartbeats "  # noqa: S608 - a column name we chose
        "ORDER BY at DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    at, depth, processed, quarantined, data = row
    out: dict[str, Any] = {"at": _iso(at), "age_s": round(now - at, 1),
                           "stale": now - at > stale_after, "queue_depth": depth,
                           "processed": processed, "quarantined": quarantined}
    if data:
        try:
            fields = json.loads(data)
        except ValueError:
            fields = {}
        out.update({k: v for k, v in fields.items() if k not in out})
    return out


def _queue(config: Config) -> dict[str, int]:
    names = NameFilter(config.watch.ignore)
    inbox = sum(1 for path, _ in walk(str(config.paths.inbox)) if not names.ignored(path))
    work = sum(_count(folder, ".dcm") for folder in (config.paths.state / "work",
                                                     config.paths.inbox / WORK_DIR_NAME))
    return {"inbox": inbox, "claimed": work,
            "quarantine": _count(config.paths.quarantine, ".json")}


def _count(folder: Path, suffix: str) -> int:
    try:
        with os.scandir(folder) as it:
            return sum(1 for e in it if e.name.endswith(suffix) and not e.name.startswith("."))
    except OSError:
        return 0


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def render_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2)


def render(data: dict[str, Any], console: Any) -> None:
    """Tables for a person at a terminal."""
    from rich.table import Table  # noqa: PLC0415 - only for people

    hour, day = data["outcomes"]["last_hour"], data["outcomes"]["last_day"]
    t = Table(title="Files by outcome", title_justify="left", min_width=60)
    t.add_column("outcome")
    t.add_column("last hour", justify="right")
    t.add_column("last 24 h", justify="right")
    for outcome in sorted(set(hour) | set(day)) or ["(none)"]:
        t.add_row(outcome, str(hour.get(outcome, 0)), str(day.get(outcome, 0)))
    console.print(t)

    reasons = data["quarantine_reasons"]["last_day"]
    r = Table(title="Quarantine reasons, last 24 h", title_justify="left", min_width=60)
    r.add_column("reason")
    r.add_column("files", justify="right")
    for reason, n in reasons.items():
        r.add_row(reason, str(n))
    if not reasons:
        r.add_row("(none)", "0")
    console.print(r)

    q = data["queue"]
    w = Table(title="Waiting", title_justify="left", min_width=60)
    w.add_column("where")
    w.add_column("files", justify="right")
    w.add_row("inbox", str(q["inbox"]))
    w.add_row("claimed (work area)", str(q["claimed"]))
    w.add_row("quarantine", str(q["quarantine"]))
    console.print(w)

    beat = data["heartbeat"]
    if beat is None:
        console.print("Last heartbeat: [yellow]none recorded[/]")
        return
    age = beat["age_s"]
    colour = "red" if beat["stale"] else "green"
    h = Table(title=f"Last heartbeat: [{colour}]{age:.0f} s ago[/] ({beat['at']})",
              title_justify="left", min_width=60)
    h.add_column("field")
    h.add_column("value", justify="right")
    for k, v in beat.items():
        if k not in ("at", "age_s", "stale"):
            h.add_row(k, str(v))
    console.print(h)
