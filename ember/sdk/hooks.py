"""The app's hooks by name, and the ``hooks`` member of an image configuration built from those names.

CONTRACT §4: the platform calls ``/aws/lambda-microvms/runtime/v1/<name>`` on the hooks port; ``ready`` and
``validate`` while building an image version, ``run``, ``resume``, ``suspend`` and ``terminate`` on every
MicroVM. Each is turned on by name (``ENABLED``); paths are fixed, only the port is configurable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ember.contract import Hooks

DEFAULT_HOOKS_PORT = 8080
IMAGE_HOOKS = ("ready", "validate")
"""Called while an image version is built."""
MICROVM_HOOKS = ("run", "resume", "suspend", "terminate")
"""Called on every MicroVM."""
HOOK_NAMES = IMAGE_HOOKS + MICROVM_HOOKS


def hooks_config(hooks: Iterable[str] | Hooks | Mapping[str, Any] | None,
                 port: int | None = None) -> dict[str, Any] | None:
    """The ``hooks`` member: from hook names (``["ready", "run", ...]``), a ``Hooks`` model or a wire dict."""
    from ember.contract import Hooks

    if hooks is None:
        return {"port": port} if port is not None else None
    if isinstance(hooks, Hooks):
        return hooks.to_wire()
    if isinstance(hooks, Mapping):
        return dict(hooks)
    names = [h.strip().lower() for h in hooks if h.strip()]
    unknown = sorted(set(names) - set(HOOK_NAMES))
    if unknown:
        raise ValueError(f"unknown hook {', '.join(unknown)}; hooks are {', '.join(HOOK_NAMES)}")
    config: dict[str, Any] = {"port": port or DEFAULT_HOOKS_PORT}
    image = {name: "ENABLED" for name in IMAGE_HOOKS if name in names}
    microvm = {name: "ENABLED" for name in MICROVM_HOOKS if name in names}
    if image:
        config["microvmImageHooks"] = image
    if microvm:
        config["microvmHooks"] = microvm
    return config


__all__ = ["DEFAULT_HOOKS_PORT", "HOOK_NAMES", "IMAGE_HOOKS", "MICROVM_HOOKS", "hooks_config"]
