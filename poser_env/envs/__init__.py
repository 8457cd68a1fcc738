"""Environments of poser_env."""

from poser_env.envs.image_poser import (
    FINAL_FIELDS,
    INFO_KEYS,
    PROGRESS_FIELDS,
    VERDICT_FIELDS,
    ImagePoserEnv,
    read_details,
)

__all__ = [
    "FINAL_FIELDS",
    "INFO_KEYS",
    "PROGRESS_FIELDS",
    "VERDICT_FIELDS",
    "ImagePoserEnv",
    "read_details",
]
