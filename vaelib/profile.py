"""Run profiles: the small ``ci`` profile (default, minutes on two CPU cores) and the ``full`` one for a GPU.

Chapters choose their sizes with :func:`pick`; the profile comes from the environment variable
``VAELIB_PROFILE``.
"""

from __future__ import annotations

import os
from typing import TypeVar

__all__ = ["PROFILES", "current_profile", "pick"]

PROFILES = ("ci", "full")
T = TypeVar("T")


def current_profile() -> str:
    """``VAELIB_PROFILE`` if set (``ci`` or ``full``), else ``ci``."""
    value = os.environ.get("VAELIB_PROFILE", "ci").strip().lower()
    if value not in PROFILES:
        raise ValueError(f"VAELIB_PROFILE must be one of {', '.join(PROFILES)}, got {value!r}")
    return value


def pick(ci: T, full: T) -> T:
    """``ci`` under the default profile, ``full`` under ``VAELIB_PROFILE=full``."""
    return full if current_profile() == "full" else ci
