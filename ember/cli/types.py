"""Click parameter types for the CLI: durations (``30s``), sizes (``512M``), ``KEY=VALUE`` pairs and hook lists.

Each type rejects bad input at parse time with a message that shows the expected form, so a typo is a
usage error (exit 2) that says how to write the value, never a traceback or a server round trip.
"""

from __future__ import annotations

import re
from typing import Any

import click

from ember.sdk.hooks import HOOK_NAMES

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$", re.IGNORECASE)
_SIZE_MIB = {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}


def parse_duration(text: str) -> int:
    """Whole seconds of ``30s``, ``5m``, ``2h``, ``1d``, ``1h30m`` or a bare number of seconds."""
    value = text.strip().lower()
    if re.fullmatch(r"\d+", value):
        return int(value)
    if not value or _DURATION_PART.sub("", value) != "":
        raise ValueError(f"{text!r} is not a duration: use a number and a unit, like 30s, 5m, 2h or 1d")
    return int(sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(value)))


def parse_size_mib(text: str) -> int:
    """Whole MiB of ``512M``, ``2G``, ``1.5GiB``, ``262144K`` or a bare number of MiB."""
    match = _SIZE.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a size: use a number and a unit, like 512M or 2G")
    number, unit, _ = match.groups()
    mib = float(number) * _SIZE_MIB[(unit or "m").lower()]
    if mib != int(mib):
        raise ValueError(f"{text!r} is not a whole number of MiB (use e.g. 512M or 2G)")
    return int(mib)


def format_duration(seconds: float) -> str:
    """``90`` → ``1m30s``; the inverse of ``parse_duration`` for display."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts[:2])


class Duration(click.ParamType):
    """A duration such as ``30s``, ``5m``, ``2h`` or ``1d`` (a bare number is seconds); converts to seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        """Seconds of ``value``; a usage error showing the expected form otherwise."""
        if isinstance(value, int):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Size(click.ParamType):
    """A size such as ``512M`` or ``2G`` (a bare number is MiB); converts to MiB."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        """MiB of ``value``; a usage error showing the expected form otherwise."""
        if isinstance(value, int):
            return value
        try:
            return parse_size_mib(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class KeyValue(click.ParamType):
    """``KEY=VALUE`` (the value may be empty or contain ``=``); converts to a ``(key, value)`` pair."""

    name = "key=value"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, str]:
        """``(key, value)`` of ``KEY=VALUE``."""
        if isinstance(value, tuple):
            return value
        key, sep, rest = str(value).partition("=")
        if not sep or not key or any(ch.isspace() for ch in key):
            self.fail(f"{value!r} is not KEY=VALUE (e.g. LOG_LEVEL=debug)", param, ctx)
        return key, rest


class HookList(click.ParamType):
    """A comma-separated list of hook names (``ready,validate,run,resume,suspend,terminate``)."""

    name = "hooks"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list[str]:
        """The hook names, each checked."""
        if isinstance(value, list):
            return value
        names = [n.strip().lower() for n in str(value).split(",") if n.strip()]
        unknown = [n for n in names if n not in HOOK_NAMES]
        if unknown or not names:
            self.fail(f"{', '.join(unknown) or repr(value)} is not a hook; use a comma-separated list of "
                      f"{','.join(HOOK_NAMES)}", param, ctx)
        return names


DURATION = Duration()
SIZE = Size()
KEY_VALUE = KeyValue()
HOOKS = HookList()
