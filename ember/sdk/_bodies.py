"""Request bodies of CreateMicrovmImage/UpdateMicrovmImage and RunMicrovm from plain Python arguments.

The code artifact arrives here as a URI already (``ember.sdk._artifacts`` uploads a local folder or zip).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from ember.contract import Hooks, connector_arn, managed_image_arn

from .hooks import hooks_config

DEFAULT_BASE_IMAGE = "python-3.11"
"""The managed base recorded as ``baseImageArn`` when none is given (the Dockerfile's FROM decides the build)."""
DEFAULT_BUILD_ROLE_ARN = "arn:aws:iam::000000000000:role/ember-build"
"""Ember has no IAM: the role ARN is only checked against the model's pattern and recorded."""

Seconds = int | float | timedelta


def seconds(value: Seconds | None, field: str) -> int | None:
    """Whole seconds of ``value`` (a number of seconds or a ``timedelta``)."""
    if value is None:
        return None
    total = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if total < 0:
        raise ValueError(f"{field}: {value} is negative")
    return int(total)


def image_body(*, source_uri: str, region: str, memory_mib: int | None = None, env: Mapping[str, str] | None = None,
               hooks: Iterable[str] | Hooks | Mapping[str, Any] | None = None, hooks_port: int | None = None,
               base_image: str | None = None, build_role_arn: str | None = None, description: str | None = None,
               egress: bool = False, disk_size_mib: int | None = None, architecture: str | None = None,
               all_capabilities: bool = False, logging_disabled: bool = False) -> dict[str, Any]:
    """The configuration members shared by CreateMicrovmImage and UpdateMicrovmImage (a full PUT)."""
    base = base_image or DEFAULT_BASE_IMAGE
    body: dict[str, Any] = {
        "baseImageArn": base if base.startswith("arn:") else managed_image_arn(region, base),
        "buildRoleArn": build_role_arn or DEFAULT_BUILD_ROLE_ARN,
        "codeArtifact": {"uri": source_uri},
    }
    optional: dict[str, Any] = {
        "description": description,
        "resources": [{"minimumMemoryInMiB": memory_mib}] if memory_mib is not None else None,
        "environmentVariables": dict(env) if env else None,
        "hooks": hooks_config(hooks, hooks_port),
        "egressNetworkConnectors": [connector_arn(region, "INTERNET_EGRESS")] if egress else None,
        "x-ember-diskSizeInMiB": disk_size_mib,
        "cpuConfigurations": [{"architecture": architecture}] if architecture else None,
        "additionalOsCapabilities": ["ALL"] if all_capabilities else None,
        "logging": {"disabled": {}} if logging_disabled else None,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def run_body(image: str, *, region: str, version: str | None = None, idle: Seconds | None = None,
             suspended_for: Seconds | None = None, auto_resume: bool = True, max_duration: Seconds | None = None,
             payload: str | None = None, shell: bool = False, egress: bool = False,
             execution_role_arn: str | None = None, client_token: str | None = None) -> dict[str, Any]:
    """The RunMicrovm body. An idle policy is sent when ``idle`` is given (``suspended_for`` 0 = no limit)."""
    body: dict[str, Any] = {"imageIdentifier": image}
    idle_s = seconds(idle, "idle")
    if idle_s is not None:
        body["idlePolicy"] = {"maxIdleDurationSeconds": idle_s,
                              "suspendedDurationSeconds": seconds(suspended_for, "suspended_for") or 0,
                              "autoResumeEnabled": auto_resume}
    elif suspended_for is not None or not auto_resume:
        raise ValueError("suspended_for and auto_resume need idle: they are parts of the idle policy")
    optional: dict[str, Any] = {
        "imageVersion": version,
        "maximumDurationInSeconds": seconds(max_duration, "max_duration"),
        "runHookPayload": payload,
        "ingressNetworkConnectors": [connector_arn(region, "ALL_INGRESS"), connector_arn(region, "SHELL_INGRESS")]
        if shell else None,
        "egressNetworkConnectors": [connector_arn(region, "INTERNET_EGRESS")] if egress else None,
        "executionRoleArn": execution_role_arn,
        "clientToken": client_token,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body
