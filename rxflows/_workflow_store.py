"""Checkpoint stores: where a workflow run records each completed step's output.

A run given a store (``execute_workflow(input, run_id=..., store=...)``) saves a
step's output as soon as the step succeeds, before any step that depends on it
starts. Running the same ``run_id`` again (after a crash, a cancellation or a
failed step) loads what was saved and runs only the steps that did not complete.

Outputs are saved as JSON, so they must be JSON-serializable (``str``, ``int``,
``float``, ``bool``, ``None``, lists and dicts with ``str`` keys); anything else
fails the step with a :class:`~rxflows.CheckpointError` that names the step and
the offending type. A restored output is what JSON gives back: a tuple comes back
as a list.

:class:`SQLiteCheckpointStore` (the embedded default: one SQLite file, via the
standard library, every query run off the event loop in a worker thread) and
:class:`MemoryCheckpointStore` (a dict, for tests) are provided; anything with the
two methods of :class:`CheckpointStore` can stand in.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ._errors import CheckpointError, ConfigurationError

__all__ = [
    "CheckpointStore",
    "MemoryCheckpointStore",
    "SQLiteCheckpointStore",
    "decode_output",
    "encode_output",
]


@runtime_checkable
class CheckpointStore(Protocol):
    """What a workflow run needs from a checkpoint store.

    ``save`` is awaited once per completed step, and must have made the output
    durable when it returns; ``load`` is awaited once when a run starts and returns
    the outputs saved for that run so far, by step name.
    """

    async def load(self, run_id: str) -> Mapping[str, Any]:
        """The outputs saved for ``run_id``, by step name (empty for a new run)."""
        ...

    async def save(self, run_id: str, step: str, output: Any) -> None:
        """Record that ``step`` of ``run_id`` completed with ``output``."""
        ...


def _describe_type(value: object) -> str:
    kind = type(value)
    module = kind.__module__
    name = kind.__qualname__
    return name if module == "builtins" else f"{module}.{name}"


def encode_output(run_id: str, step: str, output: Any) -> str:
    """``output`` as JSON text; a :class:`CheckpointError` naming the step and the type
    of the value JSON cannot hold otherwise."""
    offending: list[object] = []

    def refuse(value: object) -> Any:
        offending.append(value)
        raise TypeError(f"{_describe_type(value)} is not JSON-serializable")

    try:
        return json.dumps(output, default=refuse, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError) as error:
        if offending:
            culprit = offending[0]
            where = (
                f"a {_describe_type(culprit)}"
                if culprit is output
                else f"a {_describe_type(output)} holding a {_describe_type(culprit)}"
            )
        else:  # e.g. a dict with tuple keys, or a circular reference
            where = f"a {_describe_type(output)} that JSON cannot encode ({error})"
        raise CheckpointError(
            f"step {step!r} returned {where}, which a checkpoint store cannot save: outputs "
            "must be JSON-serializable (str, int, float, bool, None, lists, dicts with str "
            "keys); return a path or an id instead of the data, or run without a store",
            step=step,
            run_id=run_id,
        ) from error


def decode_output(text: str) -> Any:
    """The value saved by :func:`encode_output`."""
    return json.loads(text)


class MemoryCheckpointStore:
    """Checkpoints in a dict: for tests, and runs that only need to survive a failed
    step or a cancellation, not the process.

    Outputs go through JSON exactly as with :class:`SQLiteCheckpointStore`, so a
    test with this store sees the same errors and the same restored values.

    Example:
        >>> store = MemoryCheckpointStore()
        >>> await engine.execute_workflow("video.mp4", run_id="job-42", store=store)
    """

    __slots__ = ("_runs", "saves")

    def __init__(self) -> None:
        self._runs: dict[str, dict[str, str]] = {}
        self.saves = 0
        """How many outputs were saved (a test can check nothing was saved twice)."""

    async def load(self, run_id: str) -> dict[str, Any]:
        return {step: decode_output(text) for step, text in self._runs.get(run_id, {}).items()}

    async def save(self, run_id: str, step: str, output: Any) -> None:
        text = encode_output(run_id, step, output)
        self._runs.setdefault(run_id, {})[step] = text
        self.saves += 1

    async def delete(self, run_id: str) -> None:
        """Forget every checkpoint of ``run_id``."""
        self._runs.pop(run_id, None)

    async def run_ids(self) -> list[str]:
        """The runs with at least one checkpoint, sorted."""
        return sorted(self._runs)

    def __repr__(self) -> str:
        return f"MemoryCheckpointStore(runs={len(self._runs)})"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS rxflows_checkpoints (
    run_id TEXT NOT NULL,
    step TEXT NOT NULL,
    output TEXT NOT NULL,
    PRIMARY KEY (run_id, step)
)
"""


class SQLiteCheckpointStore:
    """Checkpoints in one SQLite file (standard library ``sqlite3``), off the event loop.

    Every query runs in a worker thread (``asyncio.to_thread``) on its own short-lived
    connection, one at a time, and a save is committed before it returns: once a
    step's ``save`` has returned, its output survives a crash of the process. The
    table (``rxflows_checkpoints``) is created on first use. Nothing needs closing.

    Args:
        path: The database file (created if missing); its directory must exist.
        timeout: Seconds a query waits for a lock held by another process.

    Example:
        >>> store = SQLiteCheckpointStore("checkpoints.sqlite3")
        >>> await engine.execute_workflow("video.mp4", run_id="job-42", store=store)
        >>> # after a crash, the same call runs only the steps that did not complete
    """

    __slots__ = ("_lock", "_path", "_ready", "_timeout")

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0) -> None:
        if isinstance(path, bytes) or not isinstance(path, str | os.PathLike):
            raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
        text = os.fspath(path)
        if not text or text == ":memory:":
            raise ConfigurationError(
                f"path must name a database file, got {text!r}: an in-memory SQLite database "
                "would vanish with its connection; use MemoryCheckpointStore for that",
                field="path",
                value=path,
            )
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not timeout >= 0
            or timeout == float("inf")
        ):
            raise ConfigurationError(
                f"timeout must be a finite number of seconds >= 0, got {timeout!r}",
                field="timeout",
                value=timeout,
            )
        self._path = Path(text)
        self._timeout = float(timeout)
        self._lock = threading.Lock()
        self._ready = False

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    async def load(self, run_id: str) -> dict[str, Any]:
        rows = await asyncio.to_thread(self._query, _load_rows, run_id)
        return {step: decode_output(text) for step, text in rows}

    async def save(self, run_id: str, step: str, output: Any) -> None:
        await asyncio.to_thread(self._save, run_id, step, output)

    async def delete(self, run_id: str) -> None:
        """Forget every checkpoint of ``run_id``."""
        await asyncio.to_thread(self._query, _delete_rows, run_id)

    async def run_ids(self) -> list[str]:
        """The runs with at least one checkpoint, sorted."""
        return await asyncio.to_thread(self._query, _run_ids, "")

    def _save(self, run_id: str, step: str, output: Any) -> None:
        text = encode_output(run_id, step, output)  # in the thread: outputs can be large
        self._query(_save_row, run_id, step, text)

    def _query(self, action: Any, *args: Any) -> Any:
        with self._lock:
            try:
                connection = sqlite3.connect(self._path, timeout=self._timeout)
            except sqlite3.Error as error:
                raise CheckpointError(
                    f"cannot open the checkpoint database {str(self._path)!r}: {error}"
                ) from error
            with closing(connection), connection:  # commits, or rolls back on error
                if not self._ready:
                    connection.execute(_SCHEMA)
                    self._ready = True
                return action(connection, *args)

    def __repr__(self) -> str:
        return f"SQLiteCheckpointStore({str(self._path)!r})"


def _load_rows(connection: sqlite3.Connection, run_id: str) -> list[tuple[str, str]]:
    cursor = connection.execute(
        "SELECT step, output FROM rxflows_checkpoints WHERE run_id = ? ORDER BY rowid", (run_id,)
    )
    return [(str(step), str(text)) for step, text in cursor.fetchall()]


def _save_row(connection: sqlite3.Connection, run_id: str, step: str, text: str) -> None:
    connection.execute(
        "INSERT OR REPLACE INTO rxflows_checkpoints (run_id, step, output) VALUES (?, ?, ?)",
        (run_id, step, text),
    )


def _delete_rows(connection: sqlite3.Connection, run_id: str) -> None:
    connection.execute("DELETE FROM rxflows_checkpoints WHERE run_id = ?", (run_id,))


def _run_ids(connection: sqlite3.Connection, _: str) -> list[str]:
    cursor = connection.execute("SELECT DISTINCT run_id FROM rxflows_checkpoints ORDER BY run_id")
    return [str(row[0]) for row in cursor.fetchall()]
