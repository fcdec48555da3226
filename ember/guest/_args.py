"""Strict checking of the agent's operation arguments, and the errors operations report."""

from __future__ import annotations

import errno
import socket
from typing import Any

# Our own uid_t/gid_t ceiling: (uid_t)-1 means "unchanged" to the kernel, so it is never a valid id.
MAX_ID = 2**32 - 2
# socket.gaierror carries EAI_* codes, not errnos; name them the same way.
_EAI_NAMES = {getattr(socket, n): n for n in dir(socket) if n.startswith("EAI_")}


class OpError(Exception):
    """An operation failed in a way the host should see as an ERROR frame ``{code, message}``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def errno_code(exc: OSError) -> str:
    """The errno name of an OSError (``ENOENT``...), the code an ERROR frame carries."""
    if isinstance(exc, socket.gaierror):
        return _EAI_NAMES.get(exc.errno, "EAI_FAIL")
    if exc.errno is None:
        return "ETIMEDOUT" if isinstance(exc, TimeoutError) else "EIO"
    return errno.errorcode.get(exc.errno, f"E{exc.errno}")


def os_error(exc: OSError) -> OpError:
    return OpError(errno_code(exc), str(exc))


def bad_args(field: str, why: str) -> OpError:
    return OpError("bad_args", f"{field}: {why}")


class _Required:
    pass


REQUIRED: Any = _Required()


def _missing(args: dict[str, Any], name: str, default: Any) -> tuple[bool, Any]:
    """(True, default) when the host left ``name`` out or null; the host sends null for "unset"."""
    value = args.get(name)
    if value is None:
        if default is REQUIRED:
            raise bad_args(name, "is required")
        return True, default
    return False, value


def int_arg(args: dict[str, Any], name: str, default: Any = REQUIRED, lo: int = 0,
            hi: int = 2**63 - 1) -> int:
    missing, value = _missing(args, name, default)
    if missing:
        return value
    # bool is an int subclass; true/false for a number is a caller bug, not 1/0.
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_args(name, f"expected an integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise bad_args(name, f"{value} is outside {lo}..{hi}")
    return value


def number_arg(args: dict[str, Any], name: str, default: Any = REQUIRED, lo: float = 0.0,
               hi: float = 1e9) -> float:
    missing, value = _missing(args, name, default)
    if missing:
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_args(name, f"expected a number, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise bad_args(name, f"{value} is outside {lo}..{hi}")
    return float(value)


def bool_arg(args: dict[str, Any], name: str, default: Any = REQUIRED) -> bool:
    missing, value = _missing(args, name, default)
    if missing:
        return value
    if not isinstance(value, bool):
        raise bad_args(name, f"expected true or false, got {type(value).__name__}")
    return value


def str_arg(args: dict[str, Any], name: str, default: Any = REQUIRED) -> str:
    missing, value = _missing(args, name, default)
    if missing:
        return value
    return _check_str(name, value)


def _check_str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise bad_args(name, f"expected a string, got {type(value).__name__}")
    # The kernel cuts C strings at NUL: a path or argument with one would silently mean something else.
    if "\0" in value:
        raise bad_args(name, "contains a NUL character")
    return value


def path_arg(args: dict[str, Any], name: str, default: Any = REQUIRED) -> str:
    value = str_arg(args, name, default)
    if not value.startswith("/"):
        raise bad_args(name, f"{value!r} is not an absolute path")
    return value


def argv_arg(args: dict[str, Any], name: str = "argv") -> list[str]:
    _, value = _missing(args, name, REQUIRED)
    if not isinstance(value, list) or not value:
        raise bad_args(name, "expected a non-empty list of strings")
    argv = [_check_str(f"{name}[{i}]", item) for i, item in enumerate(value)]
    if not argv[0]:
        raise bad_args(name, "the program name is empty")
    return argv


def env_arg(args: dict[str, Any], default: dict[str, str], name: str = "env") -> dict[str, str]:
    missing, value = _missing(args, name, default)
    if missing:
        return dict(value)
    if not isinstance(value, dict):
        raise bad_args(name, f"expected an object of strings, got {type(value).__name__}")
    env: dict[str, str] = {}
    for key, item in value.items():
        _check_str(f"{name} key", key)
        if not key or "=" in key:
            raise bad_args(name, f"invalid variable name {key!r}")
        env[key] = _check_str(f"{name}[{key!r}]", item)
    return env


def choice_arg(args: dict[str, Any], name: str, choices: tuple[str, ...], default: Any = REQUIRED) -> str:
    value = str_arg(args, name, default)
    if value not in choices:
        raise bad_args(name, f"{value!r} is not one of {', '.join(choices)}")
    return value
