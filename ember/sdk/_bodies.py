"""Request bodies of CreateMicrovmImage/UpdateMicrovmImage and RunMicrovm from plain Python arguments.

Also the code artifact: the API takes ``codeArtifact.uri``, so a folder is zipped (``ember.images.artifact
.make_zip``, leaving out ``.git``, ``__pycache__`` and ``.venv``) into the client's uploads folder
(``$EMBER_HOME/uploads/`` by default) and sent as a ``file://`` URI, which only a server on the same machine
can read. For a remote server, upload the zip yourself and pass its ``s3://`` or ``https://`` URI.

Build args (``--build-arg``) have no field in the API; the SDK writes them into the zipped copy of the
Dockerfile as the defaults of the matching ``ARG`` lines, so the server's build sees the same values
Docker's ``--build-arg`` would give. An arg no ``ARG`` line declares is an error.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from ember.contract import Hooks, connector_arn, managed_image_arn

from .errors import ConfigurationError
from .hooks import hooks_config

DEFAULT_BASE_IMAGE = "python-3.11"
"""The managed base recorded as ``baseImageArn`` when none is given (the Dockerfile's FROM decides the build)."""
DEFAULT_BUILD_ROLE_ARN = "arn:aws:iam::000000000000:role/ember-build"
"""Ember has no IAM: the role ARN is only checked against the model's pattern and recorded."""
_ARG_LINE = re.compile(r"^(\s*ARG\s+)([A-Za-z_][A-Za-z0-9_]*)(=\S*)?\s*$", re.IGNORECASE | re.MULTILINE)

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


# --- the code artifact ----------------------------------------------------------------------------------------------
def artifact_uri(source: str | Path, *, name: str, uploads: Path, server_is_local: bool,
                 build_args: Mapping[str, str] | None = None) -> str:
    """A ``codeArtifact.uri`` for ``source``: a folder (zipped), a ``.zip`` file, or a URI passed through."""
    text = str(source)
    if isinstance(source, str) and re.match(r"^[a-z][a-z0-9+.-]*://", text):
        if build_args:
            raise ConfigurationError("build args need a local folder or zip: the SDK writes them into the Dockerfile")
        return text
    path = Path(source).expanduser().resolve()
    if not path.exists():
        raise ConfigurationError(f"{path} does not exist (give a folder with a Dockerfile, a .zip or a URI)")
    if not server_is_local:
        raise ConfigurationError(
            f"the server is not on this machine, so it cannot read {path}: upload the zip where the server can "
            "fetch it and pass its s3:// or https:// URI")
    uploads.mkdir(parents=True, exist_ok=True, mode=0o700)
    out = uploads / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 1_000_000:06d}.zip"
    if path.is_dir():
        from ember.images.artifact import make_zip

        make_zip(path, out)
    elif zipfile.is_zipfile(path):
        shutil.copyfile(path, out)
    else:
        raise ConfigurationError(f"{path} is neither a folder nor a zip file")
    if build_args:
        _apply_build_args(out, build_args)
    return out.as_uri()


def _apply_build_args(zip_path: Path, build_args: Mapping[str, str]) -> None:
    """Rewrite the zip's ``Dockerfile`` so each ``ARG NAME`` named in ``build_args`` defaults to its value."""
    with zipfile.ZipFile(zip_path) as archive:
        try:
            text = archive.read("Dockerfile").decode("utf-8")
        except KeyError:
            raise ConfigurationError("the artifact has no Dockerfile at its root") from None
    seen: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in build_args:
            return match.group(0)
        seen.add(name)
        return f"{match.group(1)}{name}={_quote_arg(build_args[name])}"

    text = _ARG_LINE.sub(replace, text)
    unused = sorted(set(build_args) - seen)
    if unused:
        raise ConfigurationError(f"build arg {', '.join(unused)} is not declared by an ARG line in the Dockerfile")
    with tempfile.NamedTemporaryFile(dir=zip_path.parent, suffix=".part", delete=False) as tmp:
        part = Path(tmp.name)
    try:
        with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as dst:
            for info in src.infolist():
                data = text.encode("utf-8") if info.filename == "Dockerfile" else src.read(info)
                dst.writestr(info, data)
        part.replace(zip_path)
    finally:
        part.unlink(missing_ok=True)


def _quote_arg(value: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_./:@%+,-]*", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'
