"""Functions run in child processes by the cache tests (importable under spawn).

The tests put this folder on ``sys.path``; spawn children inherit the parent's path.
"""

from __future__ import annotations

import sys

import numpy as np


def rollout(cache_dir: str | None, seeds: list[int], actions_seed: int = 0) -> list[tuple]:
    """Observations, rewards, flags and infos (without ``info["cache"]``) of one episode per seed."""
    import gymnasium as gym

    import poser_env  # noqa: F401 - registers the ids
    from poser_env.suites.shapes.policies import RandomPolicy

    env = gym.make("ImagePoser-v0", cache=cache_dir)
    policy = RandomPolicy(actions_seed)
    out: list[tuple] = []
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        info.pop("cache", None)
        out.append((obs, info))
        while True:
            obs, reward, terminated, truncated, info = env.step(policy(env))
            info.pop("cache", None)
            out.append((obs, reward, terminated, truncated, info))
            if terminated or truncated:
                break
    env.close()
    return out


def hammer(cache_dir: str, worker: int, n: int) -> int:
    """Write and read ``n`` entries, a third of them shared with every other worker."""
    from poser_env.cache import GenerationCache

    store = GenerationCache(cache_dir, timeout_s=120.0)
    checked = 0
    for i in range(n):
        key = f"shared-{i}" if i % 3 == 0 else f"w{worker}-{i}"
        image = np.full((8, 8, 3), i % 256, np.uint8)
        entry = store.get(key)
        if entry is None:
            store.put(key, "expert", "hammer", {"i": i}, image)
            entry = store.get(key)
        assert entry is not None and entry.meta == {"i": i}, (key, entry)
        assert np.array_equal(entry.image, image)
        checked += 1
    store.close()
    return checked


def killed_writer(cache_dir: str, committed: int) -> None:
    """Commit ``committed`` entries, then start a transaction, say so and wait to be killed."""
    from poser_env.cache import GenerationCache

    store = GenerationCache(cache_dir)
    for i in range(committed):
        store.put(f"committed-{i}", "expert", "writer", {"i": i}, np.full((8, 8, 3), i, np.uint8))
    conn = store._connect()
    conn.execute("BEGIN IMMEDIATE")
    for i in range(100):
        conn.execute(
            "INSERT INTO entries VALUES (?, 'expert', 'writer', ?, NULL, 'x', 1, 0, 0)",
            (f"uncommitted-{i}", b"{}"),
        )
    sys.stdout.write("in-transaction\n")
    sys.stdout.flush()
    sys.stdin.readline()  # blocks until the parent kills this process


if __name__ == "__main__":
    killed_writer(sys.argv[1], int(sys.argv[2]))
