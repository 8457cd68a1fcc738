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
    # v1: the same class, the Shapes suite with the v1 skill model and 30% editing tasks
    # (suite "shapes-v1" = make_shapes_suite(world="v1", editing_fraction=0.3), so
    # suite_kwargs given to gym.make keep the v1 world).
    "ImagePoser-v1": {"suite": "shapes-v1"},
    "ImagePoser-Easy-v1": {
        "suite": "shapes-v1",
        "suite_kwargs": {"difficulty": "easy"},
        "max_steps": 4,
    },
    "ImagePoser-Hard-v1": {
        "suite": "shapes-v1",
        "suite_kwargs": {"difficulty": "hard"},
        "max_steps": 12,
    },
    "ImagePoser-Edit-v1": {"suite": "shapes-v1", "suite_kwargs": {"editing_fraction": 1.0}},
}


def register_envs() -> None:
    for env_id, kwargs in IDS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=ENTRY_POINT, kwargs=kwargs)
