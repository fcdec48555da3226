"""Rows as contract responses: ARNs from the region, configuration echoed, optional members left out."""

from __future__ import annotations

from ember.contract import BuildState, IdlePolicy, MicrovmState
from ember.store import Store, builds, images, microvms, tags, transition, versions, views
from ember.store.builds import create_build
from tests.unit.store.conftest import ACCOUNT, T0, make_image

REGION = "eu-west-1"


def test_microvm_detail_and_item(store: Store) -> None:
    image, version = make_image(store)
    with store.write() as session:
        vm = microvms.insert_microvm(
            session,
            account_id=ACCOUNT,
            image=image,
            version=version,
            endpoint="127.0.0.1:9443/microvms/x",
            idle_policy=IdlePolicy(maxIdleDurationSeconds=300, suspendedDurationSeconds=0, autoResumeEnabled=True),
            ingress_connectors=["ALL_INGRESS"],
            maximum_duration_s=600,
            now=T0,
        )
        vm = transition(session, vm.id, MicrovmState.RUNNING)
    wire = views.microvm_detail(vm, REGION).to_wire()
    assert wire["imageArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:microvm-image:web"
    assert wire["startedAt"] == T0.timestamp()
    assert wire["maximumDurationInSeconds"] == 600
    assert wire["idlePolicy"] == {
        "maxIdleDurationSeconds": 300,
        "suspendedDurationSeconds": 0,
        "autoResumeEnabled": True,
    }
    assert wire["ingressNetworkConnectors"] == ["ALL_INGRESS"]
    assert "egressNetworkConnectors" not in wire and "terminatedAt" not in wire and "stateReason" not in wire
    assert views.microvm_item(vm, REGION).to_wire()["state"] == "RUNNING"


def test_image_views(store: Store) -> None:
    make_image(store)
    with store.write() as session:
        image = images.get_image(session, ACCOUNT, "web")
        version = versions.get_version(session, image, "1")
        arn = views.image_arn_of(image, REGION)
        tags.tag_resource(session, ACCOUNT, arn, {"team": "core"})
        build = create_build(session, version, architecture="X86_64", chipset="GENERIC", chipset_generation="tcg")
        builds.set_build_state(session, build, BuildState.IN_PROGRESS)
        image_tags = tags.list_tags(session, ACCOUNT, arn)
    summary = views.image_summary(image, REGION).to_wire()
    assert summary["latestActiveImageVersion"] == "1" and summary["state"] == "CREATED"
    assert views.image_detail(image, REGION, image_tags).to_wire()["tags"] == {"team": "core"}
    detail = views.image_version(version, image, REGION, image_tags).to_wire()
    assert detail["resources"] == [{"minimumMemoryInMiB": 1024}]
    assert detail["status"] == "ACTIVE" and detail["imageVersion"] == "1"
    build_wire = views.build_detail(build, version, image, REGION).to_wire()
    assert build_wire["buildState"] == "IN_PROGRESS" and "snapshotBuild" not in build_wire
    assert views.build_summary(build, version, image, REGION).to_wire()["buildId"] == build.build_id
