"""Where Ember keeps its files, and the environment variables that move them."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_HOME = Path("~/.local/share/ember")


def ember_home() -> Path:
    """``$EMBER_HOME``, else ``~/.local/share/ember``; created on first use."""
    raw = os.environ.get("EMBER_HOME")
    home = Path(raw).expanduser() if raw else DEFAULT_HOME.expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home.resolve()
