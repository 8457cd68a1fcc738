"""A content-addressed cache of expert outputs, critic verdicts and extractor plans.

Real experts cost seconds of GPU time per call and RL re-runs the same tasks many times.
This cache stores every component call under a key that hashes

* the component's identity and settings (``cache_identity()``, see
  :func:`poser_env.components.default_cache_identity`),
* its inputs: the command as JSON, the *decoded pixels* of the input image (shape, dtype
  and bytes, never PNG bytes, so two encodings of one image share an entry), and
* the seed (experts),

and stores the value as a PNG image plus JSON metadata. Nothing is pickled.

Storage is one SQLite database in WAL mode (standard library ``sqlite3``): several
processes may read and write at once (a busy timeout waits for the write lock, every write
is one transaction), a process killed mid-write loses only its uncommitted transaction,
each entry carries a SHA-256 checksum so a corrupt or truncated entry is detected, dropped
and recomputed, and a size limit evicts the least recently used entries.

Turn it on with ``gym.make("ImagePoser-v0", cache="path/to/dir")``: the env wraps its
suite's experts, critic and extractor in caching proxies (:func:`cached_suite`) and reports
``info["cache"] = {"hits": ..., "misses": ...}`` for each reset and step. The cache also
records transitions (task, command, expert, input image, output image, verdict), which
:func:`export_transitions` writes as a Parquet file or a Hugging Face ``datasets`` dataset
for offline RL.

Command line::

    python -m poser_env cache stats --dir PATH
    python -m poser_env cache clear --dir PATH
    python -m poser_env cache export --dir PATH --out transitions.parquet
    python -m poser_env cache export --dir PATH --format datasets --out transitions/
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from poser_env._imports import require
from poser_env.components import CommandExtractor, Critic, Critique, Expert, ExpertResult
from poser_env.constraints import Command, Constraint, Plan
from poser_env.error import CacheError, ConfigError, OutputPathError, did_you_mean
from poser_env.paths import check_output_dir, check_output_file

#: Bumped whenever keys or stored values change meaning; older entries are then unreachable.
CACHE_FORMAT = 1
DB_NAME = "cache.sqlite3"
DEFAULT_MAX_BYTES = 2 * 1024**3  # 2 GiB
DEFAULT_TIMEOUT_S = 60.0  # wait this long for another process's write lock

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS entries (
        key TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        component TEXT NOT NULL,
        meta BLOB NOT NULL,
        image BLOB,
        checksum TEXT NOT NULL,
        size INTEGER NOT NULL,
        created REAL NOT NULL,
        last_used INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS entries_lru ON entries(last_used)",
    """CREATE TABLE IF NOT EXISTS transitions (
        key TEXT PRIMARY KEY,
        record BLOB NOT NULL,
        input_image BLOB,
        output_image BLOB NOT NULL,
        checksum TEXT NOT NULL,
        size INTEGER NOT NULL,
        created REAL NOT NULL,
        last_used INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS transitions_lru ON transitions(last_used)",
)


# ---------------------------------------------------------------------- encoding helpers
def canonical_json(value: Any) -> bytes:
    """Deterministic JSON bytes (sorted keys, no whitespace, exact float repr)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True).encode()


def pixels_digest(image: np.ndarray | None) -> str | None:
    """SHA-256 of an image's decoded pixels (shape, dtype and bytes); ``None`` for no image."""
    if image is None:
        return None
    arr = np.ascontiguousarray(image)
    h = hashlib.sha256(f"{arr.shape}|{arr.dtype.str}|".encode())
    h.update(arr.data)
    return h.hexdigest()


def make_key(kind: str, identity: str, inputs: dict[str, Any]) -> str:
    """Cache key: SHA-256 of the format, the call kind, the component and its inputs."""
    payload = {"format": CACHE_FORMAT, "kind": kind, "component": identity, "inputs": inputs}
    return hashlib.sha256(canonical_json(payload)).hexdigest()


def encode_png(image: np.ndarray) -> bytes:
    """Lossless PNG of an ``(H, W, 3)`` uint8 image."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    """Inverse of :func:`encode_png` (raises on a truncated or corrupt PNG)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return np.array(im.convert("RGB"), dtype=np.uint8)


def _checksum(*parts: bytes | None) -> str:
    h = hashlib.sha256()
    for p in parts:
        b = p or b""
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One ``BEGIN IMMEDIATE`` write transaction: committed on success, rolled back on any
    exception (a killed process leaves it uncommitted, which SQLite discards)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


@dataclass(frozen=True)
class CacheEntry:
    """A stored value: JSON metadata and an optional image."""

    meta: dict[str, Any]
    image: np.ndarray | None


# ---------------------------------------------------------------------- the store
class GenerationCache:
    """The SQLite store behind the cache (one directory, one database file).

    Safe to share between processes and threads: each process opens its own connection
    (re-opened after a fork), each write is one ``BEGIN IMMEDIATE`` transaction, and a busy
    timeout waits for other writers. Pickling keeps only the settings.

    Args:
        directory: Folder of the cache (created if missing).
        max_bytes: Size limit of the stored values (PNG plus JSON bytes); least recently
            used entries and transitions are evicted past it.
        timeout_s: How long to wait for another process's write lock, in seconds.
        record_transitions: Whether proxies record (task, command, expert, input, output,
            verdict) transitions for :func:`export_transitions`.

    A database that exists but cannot be written (a read-only file or folder, a read-only
    mount) is used read-only: its entries are served, new ones are not stored, and one
    warning says so.

    Raises:
        CacheError: ``directory`` is a file, cannot be created, or holds no database and
            cannot be written.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        record_transitions: bool = True,
    ):
        if (
            isinstance(max_bytes, bool)
            or not isinstance(max_bytes, (int, np.integer))
            or max_bytes < 1
        ):
            raise ConfigError(
                f"max_bytes must be a positive integer number of bytes, got {max_bytes!r}."
            )
        if not timeout_s > 0:
            raise ConfigError(f"timeout_s must be > 0 seconds, got {timeout_s!r}.")
        self.directory = Path(directory)
        self.max_bytes = int(max_bytes)
        self.timeout_s = float(timeout_s)
        self.record_transitions = bool(record_transitions)
        self._local = threading.local()
        self._clock = 0
        self._warned = False
        self.read_only = False
        if self.directory.exists() and not self.directory.is_dir():
            raise CacheError(
                f"Cache directory {str(self.directory)!r} is a file; give a folder path (cache='path/to/dir')."
            )
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CacheError(
                f"Cannot create the cache directory {str(self.directory)!r}: {e.strerror or e}. Give a writable folder."
            ) from e
        self._connect()  # fail early on an unusable directory

    @property
    def path(self) -> Path:
        """The database file."""
        return self.directory / DB_NAME

    # ------------------------------------------------------------------ connection
    def __getstate__(self) -> dict[str, Any]:
        return {
            k: self.__dict__[k]
            for k in ("directory", "max_bytes", "timeout_s", "record_transitions")
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()
        self._clock = 0
        self._warned = False
        self.read_only = False

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        try:
            conn = self._open()
        except sqlite3.OperationalError as e:
            # Not a damaged file: the file or folder cannot be written (or is busy). Moving
            # it aside would fail the same way and lose the entries.
            if "locked" in str(e) or "busy" in str(e):
                raise
            conn = self._open_read_only(e)
        except sqlite3.DatabaseError as e:
            # Not a database (a torn or overwritten file): move it aside, start afresh.
            aside = self.path.with_name(f"{DB_NAME}.corrupt-{os.getpid()}-{time.time_ns()}")
            warnings.warn(
                f"Cache database {self.path} is unreadable ({e}); moved to {aside.name}, starting empty.",
                stacklevel=3,
            )
            for suffix in ("", "-wal", "-shm"):
                p = Path(str(self.path) + suffix)
                if p.exists():
                    p.replace(Path(str(aside) + suffix))
            conn = self._open()
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self.timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode: a committed transaction survives the process being killed
            # (only a power loss may roll back the last commits).
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            for stmt in _SCHEMA:
                conn.execute(stmt)
            # A write that changes nothing: a database that cannot be written (read-only
            # file, folder or mount) fails here, not on the first put, and is then opened
            # read-only by _connect instead of failing every call.
            conn.execute("DELETE FROM entries WHERE 0")
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_read_only(self, error: sqlite3.OperationalError) -> sqlite3.Connection:
        """A read-only connection to an existing database that cannot be written, or a
        :class:`CacheError` saying why the cache cannot be used at all."""
        if not self.path.is_file():
            raise CacheError(
                f"Cannot create the cache database in {str(self.directory)!r} ({error}); the folder is not "
                "writable. Give a writable folder, or an existing cache."
            ) from error
        try:
            uri = f"{self.path.absolute().as_uri()}?mode=ro"
            conn = sqlite3.connect(
                uri, uri=True, timeout=self.timeout_s, isolation_level=None, check_same_thread=False
            )
            conn.execute("SELECT COUNT(*) FROM entries").fetchone()
        except sqlite3.Error as e:
            raise CacheError(
                f"Cannot open the cache database {str(self.path)!r}: {error}; read-only, it fails too ({e}). "
                "Check the permissions of the file, its -wal/-shm files and the folder."
            ) from e
        if not self.read_only:
            self.read_only = True
            warnings.warn(
                f"Generation cache {self.directory}: the database cannot be written ({error}); its entries are "
                "served read-only and new results are not stored.",
                stacklevel=4,
            )
        return conn

    def close(self) -> None:
        """Close this thread's connection (the cache re-opens it on next use)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None

    def _tick(self) -> int:
        # Wall-clock order across processes, strictly increasing within this one.
        self._clock = max(time.time_ns(), self._clock + 1)
        return self._clock

    def _warn(self, what: str, error: BaseException) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"Generation cache {self.directory}: {what} failed ({type(error).__name__}: {error}); "
                "calls go to the components uncached.",
                stacklevel=3,
            )

    # ------------------------------------------------------------------ entries
    def get(self, key: str) -> CacheEntry | None:
        """The entry under ``key``, or ``None`` (missing, corrupt, or the database failed).

        A corrupt entry (checksum mismatch, undecodable PNG or JSON) is deleted.
        """
        try:
            conn = self._connect()
            row = conn.execute(
                "SELECT kind, meta, image, checksum FROM entries WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                return None
            kind, meta, image, checksum = row
            try:
                if _checksum(kind.encode(), meta, image) != checksum:
                    raise ValueError("checksum mismatch")
                entry = CacheEntry(
                    json.loads(meta), decode_png(image) if image is not None else None
                )
            except Exception:
                if not self.read_only:
                    self._delete(conn, "entries", key, checksum)
                return None
        except sqlite3.Error as e:
            self._warn("a read", e)
            return None
        if not self.read_only:
            try:  # LRU bookkeeping only: a failed touch must not turn a hit into a miss
                self._write(
                    conn, "UPDATE entries SET last_used = ? WHERE key = ?", (self._tick(), key)
                )
            except sqlite3.Error as e:
                self._warn("updating an entry's last use", e)
        return entry

    def put(
        self,
        key: str,
        kind: str,
        component: str,
        meta: dict[str, Any],
        image: np.ndarray | None = None,
    ) -> None:
        """Store ``meta`` (JSON) and ``image`` (PNG) under ``key``; evict past the size limit."""
        if self.read_only:
            return
        meta_b = canonical_json(meta)
        png = encode_png(image) if image is not None else None
        size = len(meta_b) + len(png or b"")
        row = (
            key,
            kind,
            component,
            meta_b,
            png,
            _checksum(kind.encode(), meta_b, png),
            size,
            time.time(),
            self._tick(),
        )
        try:
            conn = self._connect()
            with _transaction(conn):
                conn.execute(
                    "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row
                )
                self._evict(conn)
        except sqlite3.Error as e:
            self._warn("a write", e)

    def record_transition(
        self,
        key: str,
        record: dict[str, Any],
        input_image: np.ndarray | None,
        output_image: np.ndarray,
    ) -> None:
        """Store one transition (JSON ``record`` plus images); an existing key is only touched."""
        if self.read_only:
            return
        try:
            conn = self._connect()
            if (
                conn.execute("SELECT 1 FROM transitions WHERE key = ?", (key,)).fetchone()
                is not None
            ):
                self._write(
                    conn, "UPDATE transitions SET last_used = ? WHERE key = ?", (self._tick(), key)
                )
                return
            rec = canonical_json(record)
            inp = encode_png(input_image) if input_image is not None else None
            out = encode_png(output_image)
            size = len(rec) + len(inp or b"") + len(out)
            row = (key, rec, inp, out, _checksum(rec, inp, out), size, time.time(), self._tick())
            with _transaction(conn):
                conn.execute(
                    "INSERT OR IGNORE INTO transitions VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row
                )
                self._evict(conn)
        except sqlite3.Error as e:
            self._warn("recording a transition", e)

    def transitions(self) -> list[dict[str, Any]]:
        """Every intact recorded transition, oldest first, with decoded images.

        Corrupt ones are deleted and skipped.
        """
        conn = self._connect()
        rows = conn.execute(
            "SELECT key, record, input_image, output_image, checksum FROM transitions ORDER BY created, key"
        ).fetchall()
        out = []
        for key, rec, inp, img, checksum in rows:
            try:
                if _checksum(rec, inp, img) != checksum:
                    raise ValueError("checksum mismatch")
                record = json.loads(rec)
                record.update(
                    key=key,
                    input_image=decode_png(inp) if inp is not None else None,
                    output_image=decode_png(img),
                )
            except Exception:
                self._delete(conn, "transitions", key, checksum)
                continue
            out.append(record)
        return out

    def _write(self, conn: sqlite3.Connection, sql: str, args: tuple) -> None:
        with _transaction(conn):
            conn.execute(sql, args)

    def _delete(self, conn: sqlite3.Connection, table: str, key: str, checksum: str) -> None:
        # Only the corrupt version: another process may have rewritten the key meanwhile.
        if self.read_only:
            return
        self._write(conn, f"DELETE FROM {table} WHERE key = ? AND checksum = ?", (key, checksum))

    def _evict(self, conn: sqlite3.Connection) -> None:
        """Delete least recently used rows until the stored bytes fit (inside a transaction)."""
        total = conn.execute(
            "SELECT (SELECT COALESCE(SUM(size), 0) FROM entries) + (SELECT COALESCE(SUM(size), 0) FROM transitions)"
        ).fetchone()[0]
        while total > self.max_bytes:
            victims = conn.execute(
                "SELECT 'entries', key, size, last_used FROM entries "
                "UNION ALL SELECT 'transitions', key, size, last_used FROM transitions "
                "ORDER BY last_used LIMIT 64"
            ).fetchall()
            if not victims:
                break
            for table, key, size, _ in victims:
                conn.execute(f"DELETE FROM {table} WHERE key = ?", (key,))
                total -= size
                if total <= self.max_bytes:
                    break

    # ------------------------------------------------------------------ maintenance
    def stats(self) -> dict[str, Any]:
        """Entry counts (by kind), transitions and stored bytes."""
        conn = self._connect()
        by_kind = dict(
            conn.execute(
                "SELECT kind, COUNT(*) FROM entries GROUP BY kind ORDER BY kind"
            ).fetchall()
        )
        n, b = conn.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries").fetchone()
        tn, tb = conn.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM transitions").fetchone()
        return {
            "directory": str(self.directory),
            "entries": n,
            "entries_by_kind": by_kind,
            "transitions": tn,
            "bytes": b + tb,
            "max_bytes": self.max_bytes,
            "file_bytes": sum(
                p.stat().st_size for p in self.directory.glob(DB_NAME + "*") if p.is_file()
            ),
        }

    def clear(self) -> None:
        """Delete every entry and transition, and shrink the file.

        Raises:
            CacheError: The database is read-only.
        """
        conn = self._connect()
        if self.read_only:
            raise CacheError(
                f"Cannot clear the cache {str(self.directory)!r}: its database is read-only."
            )
        self._write(conn, "DELETE FROM entries", ())
        self._write(conn, "DELETE FROM transitions", ())
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")

    def __repr__(self) -> str:
        return f"GenerationCache({str(self.directory)!r}, max_bytes={self.max_bytes})"


# ---------------------------------------------------------------------- caching proxies
class CacheCounter:
    """Hits and misses since the last :meth:`reset` (the env resets it every step)."""

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.task: dict[str, Any] | None = None  # the task being planned, for transitions
        self.last_call: dict[str, Any] | None = None  # the last expert call, for transitions

    def reset(self) -> None:
        self.hits = self.misses = 0

    def snapshot(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses}


def _identity_json(component: Any) -> str:
    identity = component.cache_identity() if hasattr(component, "cache_identity") else None
    if identity is None:
        from poser_env.components import default_cache_identity

        identity = default_cache_identity(component)
    return canonical_json(identity).decode()


class _Proxy:
    """Shared machinery: the wrapped component, its identity and the store."""

    def __init__(self, inner: Any, cache: GenerationCache, counter: CacheCounter):
        self.inner, self.cache, self.counter = inner, cache, counter
        self.identity, self.name = _identity_json(inner), inner.name

    def __getattr__(self, attr: str) -> Any:
        # Anything else (profiles, specs, pools) reads through to the real component.
        if attr in ("inner", "__setstate__", "__getstate__") or attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    def _lookup(self, kind: str, inputs: dict[str, Any]) -> tuple[str, CacheEntry | None]:
        key = make_key(kind, self.identity, inputs)
        entry = self.cache.get(key)
        if entry is None:
            self.counter.misses += 1
        else:
            self.counter.hits += 1
        return key, entry

    def cache_identity(self) -> Any:
        return json.loads(self.identity)

    def close(self) -> None:
        self.inner.close()


class CachedExpert(_Proxy, Expert):
    """An :class:`Expert` whose calls go through the cache."""

    def __init__(self, inner: Expert, cache: GenerationCache, counter: CacheCounter):
        super().__init__(inner, cache, counter)
        self.kind = inner.kind
        self.cost = inner.cost
        self.description = getattr(inner, "description", "")

    def __call__(self, command: Command, image: np.ndarray | None, seed: int) -> ExpertResult:
        inputs = {"command": command.to_dict(), "image": pixels_digest(image), "seed": int(seed)}
        key, entry = self._lookup("expert", inputs)
        if entry is not None and entry.image is not None:
            result = ExpertResult(entry.image, float(entry.meta["cost"]), entry.meta["meta"])
        else:
            result = self.inner(command, image, seed)
            self.cache.put(
                key,
                "expert",
                self.name,
                {"cost": float(result.cost), "meta": result.meta},
                result.image,
            )
        self.counter.last_call = {
            "key": key,
            "expert": self.name,
            "command": command,
            "seed": int(seed),
            "input": image,
            "output": result.image,
        }
        return result

    def __repr__(self) -> str:
        return f"CachedExpert({self.inner!r})"


class CachedCritic(_Proxy, Critic):
    """A :class:`Critic` whose verdicts go through the cache; records transitions."""

    def judge(
        self, image: np.ndarray, command: Command | None, prompt_constraints: Sequence[Constraint]
    ) -> Critique:
        inputs = {
            "image": pixels_digest(image),
            "command": command.to_dict() if command is not None else None,
            "prompt_constraints": [c.to_dict() for c in prompt_constraints],
        }
        key, entry = self._lookup("critic", inputs)
        critique = None
        if entry is not None:
            try:
                critique = Critique.from_dict(entry.meta)
            except (KeyError, TypeError, ValueError):
                critique = None  # a stale layout: recompute and overwrite
        if critique is None:
            critique = self.inner.judge(image, command, prompt_constraints)
            self.cache.put(key, "critic", self.name, critique.to_dict())
        self._record(key, image, command, critique)
        return critique

    def _record(
        self, key: str, image: np.ndarray, command: Command | None, critique: Critique
    ) -> None:
        call, self.counter.last_call = self.counter.last_call, None
        if (
            not self.cache.record_transitions
            or call is None
            or command is None
            or call["output"] is not image
        ):
            return
        task = self.counter.task or {}
        record = {
            "task_prompt": task.get("prompt", ""),
            "task_kind": task.get("kind", ""),
            "command": call["command"].to_dict(),
            "expert": call["expert"],
            "seed": call["seed"],
            "verdict": critique.to_dict(),
            "accepted": bool(critique.accepted),
        }
        tkey = hashlib.sha256(canonical_json([call["key"], key, record["task_prompt"]])).hexdigest()
        self.cache.record_transition(tkey, record, call["input"], image)


class CachedExtractor(_Proxy, CommandExtractor):
    """A :class:`CommandExtractor` whose plans and reflections go through the cache."""

    def extract(self, prompt: str, image: np.ndarray | None = None) -> Plan:
        self.counter.task = {
            "prompt": prompt,
            "kind": "editing" if image is not None else "generation",
        }
        self.counter.last_call = None
        key, entry = self._lookup("extract", {"prompt": prompt, "image": pixels_digest(image)})
        if entry is not None:
            try:
                return Plan.from_dict(entry.meta)
            except (KeyError, TypeError, ValueError):
                pass
        plan = self.inner.extract(prompt, image)
        if isinstance(plan, Plan):
            self.cache.put(key, "extract", self.name, plan.to_dict())
        return plan

    def reflect(self, command: Command, critique: Critique) -> Command | None:
        key, entry = self._lookup(
            "reflect", {"command": command.to_dict(), "critique": critique.to_dict()}
        )
        if entry is not None:
            try:
                c = entry.meta["command"]
                return Command.from_dict(c) if c is not None else None
            except (KeyError, TypeError, ValueError):
                pass
        out = self.inner.reflect(command, critique)
        self.cache.put(
            key, "reflect", self.name, {"command": out.to_dict() if out is not None else None}
        )
        return out


def as_cache(cache: str | os.PathLike[str] | GenerationCache) -> GenerationCache:
    """A :class:`GenerationCache` from a directory path (or the cache itself)."""
    if isinstance(cache, GenerationCache):
        return cache
    if isinstance(cache, (str, os.PathLike)):
        return GenerationCache(cache)
    raise ConfigError(
        f"cache must be a directory path or a GenerationCache, got {type(cache).__name__}."
    )


def cached_suite(
    suite: Any, cache: str | os.PathLike[str] | GenerationCache
) -> tuple[Any, CacheCounter]:
    """A copy of ``suite`` whose experts, critic and extractor go through ``cache``."""
    store = as_cache(cache)
    counter = CacheCounter()
    wrapped = replace(
        suite,
        experts=tuple(CachedExpert(e, store, counter) for e in suite.experts),
        critic=CachedCritic(suite.critic, store, counter),
        extractor=CachedExtractor(suite.extractor, store, counter),
    )
    return wrapped, counter


# ---------------------------------------------------------------------- export
#: The columns of an export and their types (images are PNG bytes).
COLUMN_TYPES = {
    **dict.fromkeys(("key", "task_prompt", "task_kind", "command", "expert"), "string"),
    **{"seed": "int64", "input_image": "image", "output_image": "image"},
    **{"verdict": "string", "accepted": "bool"},
}
TRANSITION_COLUMNS = tuple(COLUMN_TYPES)

#: The formats :func:`export_transitions` writes.
EXPORT_FORMATS = ("parquet", "datasets")


def _transition_columns(store: GenerationCache) -> dict[str, list[Any]]:
    """The recorded transitions as columns, images as PNG bytes (shared by every format)."""
    cols: dict[str, list[Any]] = {c: [] for c in TRANSITION_COLUMNS}
    for r in store.transitions():
        row = {
            **r,
            "command": json.dumps(r["command"], sort_keys=True),
            "seed": int(r["seed"]),
            "input_image": None if r["input_image"] is None else encode_png(r["input_image"]),
            "output_image": encode_png(r["output_image"]),
            "verdict": json.dumps(r["verdict"], sort_keys=True),
            "accepted": bool(r["accepted"]),
        }
        for c in TRANSITION_COLUMNS:
            cols[c].append(row[c])
    return cols


def _write_parquet(store: GenerationCache, out: Path) -> int:
    pa = require("pyarrow", "cache", "Exporting cached transitions as Parquet")
    pq = require("pyarrow.parquet", "cache", "Exporting cached transitions as Parquet")
    types = {"string": pa.string(), "int64": pa.int64(), "image": pa.binary(), "bool": pa.bool_()}
    schema = pa.schema(
        [(c, types[t]) for c, t in COLUMN_TYPES.items()],
        metadata={"poser_env.cache_format": str(CACHE_FORMAT)},
    )
    cols = _transition_columns(store)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols, schema=schema), out)
    return len(cols["key"])


def _write_datasets(store: GenerationCache, out: Path) -> int:
    datasets = require(
        "datasets", "cache", "Exporting cached transitions as a Hugging Face dataset"
    )
    # Image() stores the PNG bytes as they are (lossless) and decodes rows to PIL images;
    # a None input (generation from scratch) stays None.
    features = datasets.Features(
        {
            c: datasets.Image() if t == "image" else datasets.Value(t)
            for c, t in COLUMN_TYPES.items()
        }
    )
    info = datasets.DatasetInfo(
        description=f"image-poser generation cache transitions (cache format {CACHE_FORMAT})",
        features=features,
    )
    cols = _transition_columns(store)
    n = len(cols["key"])
    dataset = datasets.Dataset.from_dict(cols, features=features, info=info)
    # An empty dataset is saved as zero shards by default, which load_from_disk cannot read.
    dataset.save_to_disk(str(out), num_shards=None if n else 1)
    return n


def export_transitions(
    directory: str | os.PathLike[str] | GenerationCache,
    out: str | os.PathLike[str],
    format: str = "parquet",
) -> int:
    """Write the recorded transitions for offline RL; returns the number of rows.

    Columns: ``key``, ``task_prompt``, ``task_kind``, ``command`` (JSON), ``expert``,
    ``seed``, ``input_image`` (null for generation from scratch), ``output_image``,
    ``verdict`` (the critique as JSON) and ``accepted``.

    Args:
        directory: The cache directory (or the :class:`GenerationCache` itself).
        out: Where to write: a ``.parquet`` file for ``"parquet"``, a directory for
            ``"datasets"``.
        format: ``"parquet"``: one Parquet file, images as PNG bytes; Hugging Face
            ``datasets`` reads it with ``load_dataset("parquet", data_files=out)``.
            ``"datasets"``: a ``datasets.Dataset`` saved with ``save_to_disk``, images as
            ``datasets.Image()`` features; ``datasets.load_from_disk(out)`` gives rows whose
            images are PIL images with the cached pixels.

    Raises:
        ConfigError: if ``format`` is not one of :data:`EXPORT_FORMATS`.
        OutputPathError: ``out`` cannot be written (a folder given for a Parquet file, a
            file given for a dataset folder, no permission); checked before any work.
        MissingDependencyError: if pyarrow (``"parquet"``) or datasets (``"datasets"``) is
            not installed (the ``cache`` extra).
    """
    if format not in EXPORT_FORMATS:
        raise ConfigError(
            f"Unknown export format {format!r}, expected one of: {', '.join(EXPORT_FORMATS)}."
            + did_you_mean(format, EXPORT_FORMATS)
        )
    if format == "parquet":
        out = check_output_file(out, "export path (a Parquet file)")
    else:
        out = check_output_dir(out, "export path (a dataset folder)")
    write = _write_parquet if format == "parquet" else _write_datasets
    try:
        return write(as_cache(directory), Path(out))
    except OSError as e:  # a disk that fills or goes read-only while writing
        raise OutputPathError(
            f"Could not write the export to {str(out)!r}: {e.strerror or e}."
        ) from e


__all__ = [
    "CACHE_FORMAT",
    "EXPORT_FORMATS",
    "CacheCounter",
    "CacheEntry",
    "CachedCritic",
    "CachedExpert",
    "CachedExtractor",
    "GenerationCache",
    "cached_suite",
    "decode_png",
    "encode_png",
    "export_transitions",
    "make_key",
    "pixels_digest",
]
