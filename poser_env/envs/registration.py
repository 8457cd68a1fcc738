"""Gymnasium ids of poser_env (registered when ``poser_env`` is imported)."""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

ENTRY_POINT = "poser_env.envs.image_poser:ImagePoserEnv"

#: id -> default keyword arguments. Each is a real preset of the Shapes world.
IDS: dict[str, dict] = {
    "ImagePoser-v0": {},
    "ImagePoser-Easy-v0": {"suite_kwargs": {"difficulty": "easy"}, "max_steps": 4},
    "ImagePoser-Hard-v0": {"suite_kwargs": {"difficulty": "hard"}, "max_steps": 12},
    "ImagePoser-Edit-v0": {"suite_kwargs": {"editing_fraction": 1.0}},
}


def register_envs() -> None:
    for env_id, kwargs in IDS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=ENTRY_POINT, kwargs=kwargs)
