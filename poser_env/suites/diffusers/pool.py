"""Deprecated name of poser_env.suites.diffusers.loader (a pool is where components run)."""

import warnings

from poser_env.suites.diffusers.loader import *  # noqa: F403
from poser_env.suites.diffusers.loader import PipelineLoader as PipelinePool  # noqa: F401

warnings.warn(__doc__, DeprecationWarning, stacklevel=2)
