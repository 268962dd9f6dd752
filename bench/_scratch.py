"""What the database benchmarks share: a fresh SQLite file at the schema's head, and data loaded in a child process."""

from __future__ import annotations

import multiprocessing
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from clients.sql_client import upgrade_to_head


@contextmanager
def scratch_database(keep: str | None) -> Iterator[tuple[Path, str]]:
    """(file, URL) of an empty SQLite database migrated to head: in a temporary folder, or in `keep` and kept."""
    with tempfile.TemporaryDirectory(prefix="cuponera-bench-") as scratch:
        folder = Path(keep or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "bench.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite+aiosqlite:///{path}"
        upgrade_to_head(url)
        yield path, url


def load_in_child(target: Callable[..., Any], *args: Any) -> None:
    """Run a loader in a spawned child process, so the peak memory a benchmark reports is its own work's."""
    loader = multiprocessing.get_context("spawn").Process(target=target, args=args)
    loader.start()
    loader.join()
    if loader.exitcode != 0:
        raise SystemExit("loading the accounts failed")
