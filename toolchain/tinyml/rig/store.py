"""The results store: one SQLite file beside the rig file, every run and every board's result.

A run records its time, the tool version, the model and data hashes and the settings; each
board's result records its name, profile and USB serial, the firmware, model and library
hashes, the metrics and the verdict. Each result is written in its own transaction the moment
its board finishes, so a crash, Ctrl-C or a full disk loses nothing that was recorded: the
next `rig run` with the same model, data and settings resumes that run and redoes only the
boards that did not finish (no result, or an error such as an unplugged board or a busy place).

The schema version is SQLite's `user_version`; a store written by a newer tool is refused with
one line instead of being misread. A run holds an exclusive lock file beside the store
(`<store>.lock`, flock), so a second run on the same rig stops at once with one line; reading
(`rig report`, `rig history`) needs no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tinyml import __version__
from tinyml.core.errors import InputError

SCHEMA_VERSION = 1
# A board's result is final when it is one of these; others are tried again by a resumed run.
FINISHED_VERDICTS = ("pass", "fail")
VERDICTS = ("pass", "fail", "error", "busy")
# Another process writing at the same moment (a reader's snapshot) is waited for this long.
BUSY_TIMEOUT_S = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    finished TEXT,
    tool_version TEXT NOT NULL,
    rig_file TEXT NOT NULL,
    model_path TEXT NOT NULL,
    model_hash TEXT NOT NULL,
    data_hash TEXT NOT NULL,
    settings TEXT NOT NULL,
    run_key TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    board TEXT NOT NULL,
    profile TEXT NOT NULL,
    kind TEXT NOT NULL,
    usb_serial TEXT,
    port TEXT,
    firmware_hash TEXT,
    model_hash TEXT NOT NULL,
    library_hash TEXT,
    verdict TEXT NOT NULL,
    reason TEXT NOT NULL,
    samples INTEGER,
    exact REAL,
    agreement REAL,
    accuracy REAL,
    latency_p50_us REAL,
    latency_p95_us REAL,
    seconds REAL,
    metrics TEXT,
    recorded TEXT NOT NULL,
    tool_version TEXT NOT NULL,
    PRIMARY KEY (run_id, board)
);
"""


@dataclass
class BoardResult:
    """One board's outcome in one run, as the store keeps it."""

    board: str
    profile: str
    kind: str
    verdict: str  # pass, fail, error, busy
    reason: str
    model_hash: str
    usb_serial: str | None = None
    port: str | None = None
    firmware_hash: str | None = None
    library_hash: str | None = None
    samples: int | None = None
    exact: float | None = None
    agreement: float | None = None
    accuracy: float | None = None
    latency_p50_us: float | None = None
    latency_p95_us: float | None = None
    seconds: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    recorded: str = ""
    tool_version: str = __version__
    run_id: int | None = None

    @property
    def finished(self) -> bool:
        return self.verdict in FINISHED_VERDICTS


@dataclass(frozen=True)
class RunRecord:
    id: int
    started: str
    finished: str | None
    tool_version: str
    rig_file: str
    model_path: str
    model_hash: str
    data_hash: str
    settings: dict[str, Any]
    run_key: str


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ResultsStore:
    """The store of one rig; `lock=True` (a run) takes the run lock beside it."""

    def __init__(self, path: str | Path, *, lock: bool = False, create: bool = True) -> None:
        self.path = Path(path)
        self._lock_file = None
        if not create and not self.path.exists():
            raise InputError(f"there is no results store {self.path} yet", "run `tinyml rig run RIGFILE --model M.tflite --data D.npz` first")
        if lock:
            self._take_lock()
        try:
            with self._guard("open"):
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
                self._db.row_factory = sqlite3.Row
                self._check_schema()
        except BaseException:
            self._release_lock()
            raise

    # ---- life cycle -------------------------------------------------------------------------
    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        self._release_lock()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _take_lock(self) -> None:
        lock_path = self.path.with_name(self.path.name + ".lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the store's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise InputError(f"the results store {self.path} is in use by another rig run ({holder})", "wait for that run to finish, or stop it; two runs on one rig would fight over its boards") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        self._lock_file = handle

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing drops the flock
            self._lock_file = None

    @contextlib.contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        """SQLite's failures as one line: a full disk, a locked or a damaged file."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if "full" in text:
                raise InputError(f"the results store {self.path} could not {doing}: the disk is full", "free space on that disk and run `tinyml rig run` again; every board recorded so far is kept and the rest resume") from exc
            if "locked" in text or "busy" in text:
                raise InputError(f"the results store {self.path} is locked by another program", "wait for it to finish (another `tinyml rig` or an SQLite browser), then try again") from exc
            raise InputError(f"the results store {self.path} could not {doing}: {exc}", "check the file and the disk; move a damaged store aside to start a new one") from exc
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{self.path} is not a results store SQLite can read ({exc})", "move it aside; `tinyml rig run` starts a new store") from exc

    def _check_schema(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise InputError(
                f"the results store {self.path} was written by a newer tinyml (store schema {version}, this tinyml {__version__} reads up to {SCHEMA_VERSION})",
                "upgrade tinyml (`pip install -U tinyml-toolchain`), or give the rig another store in its [rig] table",
            )
        if version < SCHEMA_VERSION:
            # One transaction: a store is either empty or has the whole schema and its version.
            self._db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")

    @contextlib.contextmanager
    def _transaction(self, doing: str) -> Iterator[sqlite3.Connection]:
        with self._guard(doing):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                if self._db.in_transaction:  # SQLite has rolled back itself after some errors (a full disk)
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # ---- runs -------------------------------------------------------------------------------
    def start_run(self, *, rig_file: str, model_path: str, model_hash: str, data_hash: str, settings: dict[str, Any], run_key: str, resume: bool = True) -> tuple[RunRecord, dict[str, BoardResult]]:
        """The run to record into: the last one with this key if it left boards unfinished, else a new one.

        Returns the run and the results it already holds (finished boards are not run again).
        """
        if resume:
            row = self._db.execute("SELECT * FROM runs WHERE run_key = ? ORDER BY id DESC LIMIT 1", (run_key,)).fetchone()
            if row is not None:
                done = self.results(row["id"])
                if row["finished"] is None or any(not r.finished for r in done.values()):
                    return _run(row), done
        with self._transaction("record the run") as db:
            cursor = db.execute(
                "INSERT INTO runs (started, tool_version, rig_file, model_path, model_hash, data_hash, settings, run_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (now(), __version__, rig_file, model_path, model_hash, data_hash, json.dumps(settings, sort_keys=True), run_key),
            )
            run_id = cursor.lastrowid
        return self.run(run_id), {}

    def finish_run(self, run_id: int) -> None:
        with self._transaction("close the run") as db:
            db.execute("UPDATE runs SET finished = ? WHERE id = ?", (now(), run_id))

    def run(self, run_id: int) -> RunRecord:
        row = self._db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise InputError(f"run {run_id} is not in {self.path}", "see `tinyml rig report` for the runs it holds")
        return _run(row)

    def runs(self) -> list[RunRecord]:
        with self._guard("be read"):
            return [_run(row) for row in self._db.execute("SELECT * FROM runs ORDER BY id")]

    # ---- results ------------------------------------------------------------------------------
    def record(self, run_id: int, result: BoardResult) -> None:
        """Write (or replace) one board's result of a run, in its own transaction."""
        result.recorded = result.recorded or now()
        data = asdict(result)
        data.pop("run_id")
        data["metrics"] = json.dumps(data["metrics"], sort_keys=True)
        columns = ", ".join(["run_id", *data])
        marks = ", ".join("?" * (len(data) + 1))
        with self._transaction(f"record board {result.board}") as db:
            db.execute(f"INSERT OR REPLACE INTO results ({columns}) VALUES ({marks})", (run_id, *data.values()))  # noqa: S608 - column names are ours

    def results(self, run_id: int) -> dict[str, BoardResult]:
        with self._guard("be read"):
            rows = self._db.execute("SELECT * FROM results WHERE run_id = ? ORDER BY board", (run_id,)).fetchall()
        return {row["board"]: _result(row) for row in rows}

    def board_results(self, board: str) -> list[BoardResult]:
        """Every result of one board, oldest first."""
        with self._guard("be read"):
            rows = self._db.execute("SELECT * FROM results WHERE board = ? ORDER BY run_id", (board,)).fetchall()
        return [_result(row) for row in rows]

    def boards(self) -> list[str]:
        with self._guard("be read"):
            return [row[0] for row in self._db.execute("SELECT DISTINCT board FROM results ORDER BY board")]


def _run(row: sqlite3.Row) -> RunRecord:
    data = dict(row)
    data["settings"] = json.loads(data["settings"])
    return RunRecord(**data)


def _result(row: sqlite3.Row) -> BoardResult:
    data = dict(row)
    data["metrics"] = json.loads(data["metrics"] or "{}")
    return BoardResult(**data)
