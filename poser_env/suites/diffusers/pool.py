"""Deprecated: the module is :mod:`poser_env.suites.diffusers.loader` (``PipelineLoader``); in
image-poser a *pool* is where components run (:mod:`poser_env.pools`)."""

import warnings

from poser_env.suites.diffusers.loader import *  # noqa: F403
from poser_env.suites.diffusers.loader import PipelineLoader as PipelinePool  # noqa: F401

warnings.warn(__doc__.replace("\n", " "), DeprecationWarning, stacklevel=2)
