"""The generation cache: keys, hits and misses, exact replay, eviction, corruption,
several processes, a killed writer, the CLI and the Parquet and ``datasets`` exports."""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence

import poser_env  # registers the ids
from poser_env.__main__ import main as cli
from poser_env.cache import (
    DB_NAME,
    TRANSITION_COLUMNS,
    GenerationCache,
    cached_suite,
    encode_png,
    export_transitions,
    make_key,
    pixels_digest,
)
from poser_env.components import Critique
from poser_env.constraints import Command
from poser_env.error import ConfigError, MissingDependencyError
from poser_env.suites import make_suite
from poser_env.suites.shapes import ShapesExpert

HERE = Path(__file__).parent


@pytest.fixture
def workers(monkeypatch):
    """The helper module, importable here and in spawned children."""
    monkeypatch.syspath_prepend(str(HERE))
    import cache_workers

    return cache_workers


def episode_infos(env, seed, actions):
    obs, info = env.reset(seed=seed)
    infos = [info]
    for a in actions:
        *_, terminated, truncated, info = env.step(a)
        infos.append(info)
        if terminated or truncated:
            break
    return infos


def total_misses(cache_dir, seeds):
    """Cache misses of the same seeded random-policy episodes as ``cache_workers.rollout``."""
    from poser_env.suites.shapes.policies import RandomPolicy

    env = gym.make("ImagePoser-v0", cache=cache_dir)
    policy = RandomPolicy(0)
    misses = 0
    for seed in seeds:
        misses += env.reset(seed=seed)[1]["cache"]["misses"]
        while True:
            *_, terminated, truncated, info = env.step(policy(env))
            misses += info["cache"]["misses"]
            if terminated or truncated:
                break
    return misses


# ---------------------------------------------------------------- keys and identities
def test_key_hashes_decoded_pixels_not_png_bytes():
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    from PIL import Image

    reencoded = np.asarray(Image.open(__import__("io").BytesIO(encode_png(image))))
    assert pixels_digest(reencoded) == pixels_digest(image)
    other = image.copy()
    other[0, 0, 0] ^= 1
    assert pixels_digest(other) != pixels_digest(image)
    assert pixels_digest(image[:, :8]) != pixels_digest(image[:8, :])  # shape counts
    assert make_key("expert", "a", {"seed": 1}) != make_key("expert", "a", {"seed": 2})
    assert make_key("expert", "a", {"seed": 1}) != make_key("critic", "a", {"seed": 1})


def test_expert_identity_follows_its_skill_profile():
    expert = make_suite("shapes").experts[0]
    assert isinstance(expert, ShapesExpert)
    same = ShapesExpert(expert.name, expert.kind, expert.cost, expert.profile, expert.description)
    changed = ShapesExpert(
        expert.name,
        expert.kind,
        expert.cost,
        replace(expert.profile, counting=0.123),
        expert.description,
    )
    assert same.cache_identity() == expert.cache_identity()
    assert changed.cache_identity() != expert.cache_identity()


def test_critique_round_trips_through_json():
    suite = make_suite("shapes")
    env = gym.make("ImagePoser-v0")
    env.reset(seed=3)
    *_, info = env.step(0)
    verdict = poser_env.read_details(info)["verdict"]
    critique = Critique.from_dict(verdict)
    assert critique.to_dict() == verdict
    assert isinstance(critique.checks, tuple)
    assert suite.critic.name == "shapes-critic"


# ---------------------------------------------------------------- hits, misses, replay
def test_hits_and_misses_in_info(tmp_path):
    env = gym.make("ImagePoser-v0", cache=str(tmp_path))
    first = episode_infos(env, seed=5, actions=[0, 1, 6, 7])
    assert first[0]["cache"] == {"hits": 0, "misses": 1}  # the plan
    assert all(
        i["cache"]["hits"] == 0 and i["cache"]["misses"] >= 2
        for i in first[1:]
        if not i["invalid_action"]
    )
    again = episode_infos(env, seed=5, actions=[0, 1, 6, 7])
    assert [i["cache"]["misses"] for i in again] == [0] * len(again)
    assert [i["cache"]["hits"] for i in again] == [i["cache"]["misses"] for i in first]
    assert gym.make("ImagePoser-v0").reset(seed=5)[1]["cache"] == {
        "hits": 0,
        "misses": 0,
    }  # off by default


@pytest.mark.parametrize("env_id", ["ImagePoser-v0", "ImagePoser-Hard-v0"])
def test_cached_runs_equal_uncached_runs_exactly(tmp_path, workers, env_id):
    if env_id not in gym.registry:
        pytest.skip(f"{env_id} not registered")
    seeds = list(range(8))
    plain = workers.rollout(None, seeds)
    cold = workers.rollout(str(tmp_path), seeds)
    warm = workers.rollout(str(tmp_path), seeds)
    assert data_equivalence(plain, cold)
    assert data_equivalence(plain, warm)


def test_env_with_cache_pickles(tmp_path):
    env = gym.make("ImagePoser-v0", cache=str(tmp_path))
    env.reset(seed=0)
    clone = pickle.loads(pickle.dumps(env))
    a, b = episode_infos(env, 1, [0, 6]), episode_infos(clone, 1, [0, 6])
    assert [i["cache"]["hits"] for i in b] == [i["cache"]["misses"] for i in a]  # one shared store
    for i in (*a, *b):
        del i["cache"]
    assert data_equivalence(a, b)


def test_bad_cache_argument():
    with pytest.raises(ConfigError, match="cache must be a directory path or a GenerationCache"):
        gym.make("ImagePoser-v0", cache=3)
    with pytest.raises(ConfigError, match="max_bytes must be a positive integer"):
        GenerationCache("unused-dir-never-created", max_bytes=0)


# ---------------------------------------------------------------- eviction
def test_size_limit_evicts_least_recently_used(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    one = len(encode_png(image)) + len(b'{"i":0}')
    store = GenerationCache(tmp_path, max_bytes=3 * one + one // 2)  # room for three
    for k in ("a", "b", "c"):
        store.put(k, "expert", "x", {"i": 0}, image)
    assert store.get("a") is not None  # a is now the most recently used
    store.put("d", "expert", "x", {"i": 0}, image)
    assert store.get("b") is None  # the least recently used went
    assert all(store.get(k) is not None for k in ("a", "c", "d"))
    stats = store.stats()
    assert stats["entries"] == 3 and stats["bytes"] <= store.max_bytes


def test_env_respects_a_tiny_limit(tmp_path, workers):
    store = GenerationCache(tmp_path, max_bytes=200_000)
    env = gym.make("ImagePoser-v0", cache=store)
    for seed in range(5):
        episode_infos(env, seed, [0, 6, 7, 1])
    assert store.stats()["bytes"] <= 200_000


# ---------------------------------------------------------------- corruption
def _corrupt(path: Path, table: str, column: str, how: str) -> int:
    conn = sqlite3.connect(path)
    with conn:
        if how == "truncate":
            n = conn.execute(
                f"UPDATE {table} SET {column} = substr({column}, 1, length({column}) / 2)"
            ).rowcount
        else:
            n = conn.execute(f"UPDATE {table} SET {column} = zeroblob(length({column}))").rowcount
    conn.close()
    return n


@pytest.mark.parametrize("how", ["truncate", "zero"])
def test_corrupt_entries_are_dropped_and_recomputed(tmp_path, workers, how):
    seeds = [0, 1, 2]
    plain = workers.rollout(None, seeds)
    workers.rollout(str(tmp_path), seeds)
    assert _corrupt(tmp_path / DB_NAME, "entries", "image", how) > 0
    assert _corrupt(tmp_path / DB_NAME, "entries", "meta", how) > 0
    with _no_warning():  # corruption is expected and handled silently
        again = workers.rollout(str(tmp_path), seeds)
    assert data_equivalence(plain, again)
    assert total_misses(str(tmp_path), seeds) == 0  # the recomputed values were stored


class _no_warning:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("error")
        # Gymnasium's note that ImagePoser-v0 has a newer version is not the cache's warning.
        warnings.filterwarnings("ignore", message=".*out of date.*", category=DeprecationWarning)

    def __exit__(self, *exc):
        self._w.__exit__(*exc)


def test_a_corrupt_entry_reads_as_missing_and_is_deleted(tmp_path):
    store = GenerationCache(tmp_path)
    store.put("k", "expert", "x", {"a": 1}, np.zeros((4, 4, 3), np.uint8))
    _corrupt(store.path, "entries", "image", "truncate")
    assert store.get("k") is None
    assert store.stats()["entries"] == 0


def test_an_unreadable_database_file_is_moved_aside(tmp_path):
    (tmp_path / DB_NAME).write_bytes(b"this is not a database" * 100)
    with pytest.warns(UserWarning, match="unreadable"):
        store = GenerationCache(tmp_path)
    store.put("k", "expert", "x", {"a": 1})
    assert store.get("k").meta == {"a": 1}
    assert list(tmp_path.glob(DB_NAME + ".corrupt-*"))


# ---------------------------------------------------------------- processes
def test_several_processes_share_one_cache(tmp_path, workers):
    ctx = mp.get_context("spawn")
    n = 40
    with ctx.Pool(4) as pool:
        checked = pool.starmap(workers.hammer, [(str(tmp_path), w, n) for w in range(4)])
    assert checked == [n] * 4
    store = GenerationCache(tmp_path)
    assert store.stats()["entries"] == (n + 2) // 3 + 4 * (n - (n + 2) // 3)
    conn = sqlite3.connect(tmp_path / DB_NAME)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_env_workers_in_several_processes_match_a_plain_run(tmp_path, workers):
    ctx = mp.get_context("spawn")
    jobs = [[0, 1, 2], [1, 2, 3], [0, 3, 4], [2, 4, 5]]  # overlapping seeds: concurrent hits
    with ctx.Pool(4) as pool:
        cached = pool.starmap(workers.rollout, [(str(tmp_path), seeds) for seeds in jobs])
    for seeds, got in zip(jobs, cached, strict=True):
        assert data_equivalence(workers.rollout(None, seeds), got)


def test_a_killed_writer_loses_nothing_committed(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "cache_workers.py"), str(tmp_path), "5"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "in-transaction"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    store = GenerationCache(tmp_path, timeout_s=5.0)
    for i in range(5):
        entry = store.get(f"committed-{i}")
        assert entry is not None and entry.meta == {"i": i}
        assert np.array_equal(entry.image, np.full((8, 8, 3), i, np.uint8))
    assert store.stats()["entries"] == 5  # nothing of the open transaction
    store.put("after", "expert", "x", {"ok": True})  # the write lock is free again
    assert store.get("after").meta == {"ok": True}
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# ---------------------------------------------------------------- proxies
def test_proxies_read_through_to_the_component(tmp_path):
    suite = make_suite("shapes")
    wrapped, counter = cached_suite(suite, tmp_path)
    assert wrapped.expert_names == suite.expert_names
    assert wrapped.experts[0].profile == suite.experts[0].profile
    assert wrapped.experts[0].cache_identity() == suite.experts[0].cache_identity()
    cmd = Command("draw two red circles", "generate")
    a = wrapped.experts[0](cmd, None, 7)
    b = wrapped.experts[0](cmd, None, 7)
    assert counter.snapshot() == {"hits": 1, "misses": 1}
    assert np.array_equal(a.image, b.image) and a.meta == b.meta and a.cost == b.cost


# ---------------------------------------------------------------- CLI and export
def test_cli_stats_and_clear(tmp_path, capsys):
    env = gym.make("ImagePoser-v0", cache=str(tmp_path))
    episode_infos(env, 0, [0, 6])
    assert cli(["cache", "stats", "--dir", str(tmp_path)]) == 0
    assert '"entries_by_kind"' in capsys.readouterr().out
    assert cli(["cache", "clear", "--dir", str(tmp_path)]) == 0
    assert GenerationCache(tmp_path).stats()["entries"] == 0
    assert cli(["cache", "stats", "--dir", str(tmp_path / "missing")]) == 1
    assert "No cache at" in capsys.readouterr().err


def recorded_episode(cache_dir):
    """One cached episode: the unwrapped env and (command, expert, input, info) per judged step."""
    env = gym.make("ImagePoser-v0", cache=str(cache_dir))
    env.reset(seed=4)
    base = env.unwrapped
    steps = []
    for a in [0, 6, 7]:
        before = base.current_image.copy() if base.progress_has_image else None
        command = base.current_command
        *_, terminated, truncated, info = env.step(a)
        if info["verdict"]["has_verdict"]:
            steps.append((command, info["expert"], before, info))
        if terminated or truncated:
            break
    return base, steps


def test_export_round_trip(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    from poser_env.cache import decode_png

    base, steps = recorded_episode(tmp_path / "c")
    n = export_transitions(tmp_path / "c", tmp_path / "t.parquet")
    table = pq.read_table(tmp_path / "t.parquet").to_pylist()
    assert n == len(table) == len(steps) > 0
    import json

    for row, (command, expert, before, info) in zip(table, steps, strict=True):
        assert row["task_prompt"] == base.task.prompt
        assert json.loads(row["command"]) == command.to_dict()
        assert row["expert"] == expert
        assert json.loads(row["verdict"]) == poser_env.read_details(info)["verdict"]
        assert row["accepted"] == info["accepted"]
        if before is None:
            assert row["input_image"] is None
        else:
            assert np.array_equal(decode_png(row["input_image"]), before)
    assert (
        np.array_equal(decode_png(table[-1]["output_image"]), base.current_image)
        or not steps[-1][3]["image_kept"]
    )


def test_export_without_pyarrow(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    GenerationCache(tmp_path)
    with pytest.raises(MissingDependencyError, match=r'pip install "image-poser\[cache\]"'):
        export_transitions(tmp_path, tmp_path / "t.parquet")


def test_export_datasets_round_trip(tmp_path):
    datasets = pytest.importorskip("datasets")
    import json

    base, steps = recorded_episode(tmp_path / "c")
    assert steps[0][2] is None  # the first step generates from scratch: no input image
    n = export_transitions(tmp_path / "c", tmp_path / "ds", format="datasets")
    ds = datasets.load_from_disk(str(tmp_path / "ds"))
    assert n == len(ds) == len(steps) > 0
    assert ds.column_names == list(TRANSITION_COLUMNS)
    assert ds.features["input_image"] == datasets.Image()
    assert ds.features["output_image"] == datasets.Image()
    assert ds.features["seed"] == datasets.Value("int64")
    assert ds.features["accepted"] == datasets.Value("bool")
    cached = GenerationCache(tmp_path / "c").transitions()
    for row, record, (command, expert, before, info) in zip(ds, cached, steps, strict=True):
        assert row["key"] == record["key"]
        assert row["task_prompt"] == base.task.prompt
        assert json.loads(row["command"]) == command.to_dict()
        assert row["expert"] == expert
        assert row["seed"] == record["seed"]
        assert json.loads(row["verdict"]) == poser_env.read_details(info)["verdict"]
        assert row["accepted"] == info["accepted"]
        assert np.array_equal(np.asarray(row["output_image"]), record["output_image"])
        if before is None:
            assert row["input_image"] is None
        else:
            assert np.array_equal(np.asarray(row["input_image"]), before)


def test_export_datasets_of_an_empty_cache_loads(tmp_path):
    datasets = pytest.importorskip("datasets")
    GenerationCache(tmp_path / "c")
    assert export_transitions(tmp_path / "c", tmp_path / "ds", format="datasets") == 0
    ds = datasets.load_from_disk(str(tmp_path / "ds"))
    assert len(ds) == 0 and ds.column_names == list(TRANSITION_COLUMNS)


def test_cli_export_datasets(tmp_path, capsys):
    datasets = pytest.importorskip("datasets")
    recorded_episode(tmp_path / "c")
    args = ["cache", "export", "--dir", str(tmp_path / "c"), "--format", "datasets"]
    assert cli(args) == 2
    assert "needs --out DIRECTORY" in capsys.readouterr().err
    assert cli([*args, "--out", str(tmp_path / "ds")]) == 0
    n = GenerationCache(tmp_path / "c").stats()["transitions"]
    assert f"wrote {n} transitions to {tmp_path / 'ds'}" in capsys.readouterr().out
    assert len(datasets.load_from_disk(str(tmp_path / "ds"))) == n > 0


def test_export_without_datasets(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    GenerationCache(tmp_path)
    expected = "needs the package 'datasets'" + r'.*pip install "image-poser\[cache\]"'
    with pytest.raises(MissingDependencyError, match=expected):
        export_transitions(tmp_path, tmp_path / "ds", format="datasets")


def test_export_unknown_format(tmp_path):
    GenerationCache(tmp_path)
    expected = r"Unknown export format 'hf', expected one of: parquet, datasets"
    with pytest.raises(ConfigError, match=expected):
        export_transitions(tmp_path, tmp_path / "out", format="hf")
