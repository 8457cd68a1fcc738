"""The one check of optional dependencies (extras), as diffusers' ``import_utils`` does it.

Heavy packages live behind extras of ``pyproject.toml`` and are imported where they are used,
through :func:`require`, so that a missing one always says which ``pip install`` to run.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from poser_env.error import MissingDependencyError


def require(module: str, extra: str, feature: str, package: str | None = None) -> ModuleType:
    """Import ``module``, or raise the error that names the extra to install.

    Args:
        module: Module to import, e.g. ``"pyarrow.parquet"``.
        extra: The ``image-poser[extra]`` that installs it, e.g. ``"cache"``.
        feature: What needs it, for the message ("Exporting cached transitions as Parquet").
        package: Name to install when it differs from the module's top package
            (``"open_clip_torch"`` for ``open_clip``).

    Returns:
        The imported module.

    Raises:
        MissingDependencyError: A subclass of ``ImportError`` and of Gymnasium's
            ``DependencyNotInstalled``; the message ends with ``pip install "image-poser[extra]"``.

    Example:
        >>> require("json", "cache", "Reading JSON").__name__
        'json'
    """
    try:
        return importlib.import_module(module)
    except MissingDependencyError:  # raised inside the module by its own require(): precise already
        raise
    except ImportError as e:
        top = module.split(".")[0]
        # A dependency of the module missing (e.name) is named as such; the module itself by its package.
        missing = package or top if e.name in (None, module, top) else e.name
        raise MissingDependencyError(missing, extra, feature) from e
