"""Environments of poser_env."""

from poser_env.envs.image_poser import PROGRESS_FIELDS, ImagePoserEnv

__all__ = ["PROGRESS_FIELDS", "ImagePoserEnv"]
