"""Locate and import the peers' shared workload definition (``common.py``, ``ref_python.py``).

The peer scripts live beside the project in ``../shared/bench/peers``; the environment
variable ``STROM_PEERS_DIR`` points elsewhere. They are plain scripts that import each
other as top-level modules (``import common``), so the directory goes on ``sys.path``.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

__all__ = ["REPO_ROOT", "PeersNotFoundError", "load", "peers_dir"]

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The repository root (the parent of ``benchmarks/``)."""

ENV_VAR = "STROM_PEERS_DIR"


class PeersNotFoundError(RuntimeError):
    """The peers' directory (with ``common.py`` and ``ref_python.py``) is missing."""


def peers_dir() -> Path:
    """The peers' directory: ``$STROM_PEERS_DIR`` or ``<repo>/../shared/bench/peers``.

    Raises:
        PeersNotFoundError: the directory or one of its two modules is missing.
    """
    configured = os.environ.get(ENV_VAR)
    path = Path(configured) if configured else REPO_ROOT.parent / "shared" / "bench" / "peers"
    missing = [name for name in ("common.py", "ref_python.py") if not (path / name).is_file()]
    if missing:
        how = f"${ENV_VAR}={configured}" if configured else f"the default (${ENV_VAR} unset)"
        msg = (
            f"peer benchmark files not found: {', '.join(missing)} missing in {path} "
            f"({how}). The benchmarks reuse the peers' workload definition; point "
            f"{ENV_VAR} at the directory holding common.py and ref_python.py."
        )
        raise PeersNotFoundError(msg)
    return path.resolve()


def load() -> tuple[ModuleType, ModuleType]:
    """Import and return the peers' ``(common, ref_python)`` modules.

    Raises:
        PeersNotFoundError: see :func:`peers_dir`.
    """
    path = str(peers_dir())
    if path not in sys.path:
        sys.path.insert(0, path)
    return importlib.import_module("common"), importlib.import_module("ref_python")
