"""Wire-form API responses for the fake server (the shapes of ``ember.contract``)."""

from __future__ import annotations

from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"
T0 = 1_763_900_000.0


def vm_id(n: int) -> str:
    return f"mvm-{n:032x}"


def image_arn(name: str = "ci") -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:microvm-image:{name}"


def microvm(microvm_id: str, state: str = "RUNNING", endpoint: str = "127.0.0.1:9443", **extra: Any) -> dict:
    return {"microvmId": microvm_id, "state": state, "endpoint": f"{endpoint}/microvms/{microvm_id}",
            "imageArn": image_arn(), "imageVersion": "1", "startedAt": T0, "maximumDurationInSeconds": 28800,
            **extra}


def item(microvm_id: str, state: str = "RUNNING") -> dict:
    return {"microvmId": microvm_id, "state": state, "imageArn": image_arn(), "imageVersion": "1", "startedAt": T0}


def image(name: str = "ci", state: str = "CREATED") -> dict:
    return {"imageArn": image_arn(name), "name": name, "state": state, "latestActiveImageVersion": "1",
            "createdAt": T0}


def version(v: str = "1", state: str = "SUCCESSFUL", name: str = "ci", **extra: Any) -> dict:
    return {"imageArn": image_arn(name), "imageVersion": v, "state": state, "status": "ACTIVE", "createdAt": T0,
            "baseImageArn": f"arn:aws:lambda:{REGION}:aws:microvm-image:python-3.11",
            "buildRoleArn": "arn:aws:iam::000000000000:role/ember-build", "codeArtifact": {"uri": "file:///x.zip"},
            **extra}


def created(name: str = "ci", v: str = "1") -> dict:
    head = image(name, "CREATING")
    config = {k: val for k, val in version(v, name=name).items()
              if k in ("baseImageArn", "buildRoleArn", "codeArtifact")}
    return {**head, **config, "imageVersion": v}


def build(build_id: str = "b" * 32, state: str = "SUCCESSFUL", v: str = "1") -> dict:
    return {"imageArn": image_arn(), "imageVersion": v, "buildId": build_id, "buildState": state,
            "architecture": "X86_64", "chipset": "GENERIC", "chipsetGeneration": "tcg", "createdAt": T0}
