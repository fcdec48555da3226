"""List calls follow nextToken through every page; responses with members this client does not know still parse."""

from __future__ import annotations

from collections.abc import Callable

from ember.sdk import Client

from . import samples
from .fakes import FakeServer, Recorded, Reply


def paged(pages: list[list[dict]]) -> Callable[[Recorded], Reply]:
    """A route answering page i for nextToken ``p<i>``, linking each page to the next."""

    def answer(request: Recorded) -> Reply:
        token = request.query.get("nextToken", "p0")
        index = int(token[1:])
        body: dict = {"items": pages[index]}
        if index + 1 < len(pages):
            body["nextToken"] = f"p{index + 1}"
        return Reply(200, body)

    return answer


def test_list_microvms_follows_every_page_and_hides_terminated(server: FakeServer, client: Client) -> None:
    ids = [samples.vm_id(n) for n in range(1, 6)]
    server.route("GET", "/2025-09-09/microvms", paged([
        [samples.item(ids[0]), samples.item(ids[1], "TERMINATED")],
        [samples.item(ids[2], "SUSPENDED")],
        [samples.item(ids[3], "TERMINATED"), samples.item(ids[4], "PENDING")],
    ]))
    visible = client.microvms.list()
    assert [vm.microvmId for vm in visible] == [ids[0], ids[2], ids[4]]
    assert [r.query.get("nextToken") for r in server.requests] == [None, "p1", "p2"]
    every = client.microvms.list(all=True)
    assert [vm.microvmId for vm in every] == ids


def test_list_microvms_passes_the_image_filter(server: FakeServer, client: Client) -> None:
    server.route("GET", "/2025-09-09/microvms", Reply(200, {"items": []}))
    client.microvms.list(image="ci", version="2")
    assert server.requests[0].query == {"imageIdentifier": "ci", "imageVersion": "2"}


def test_images_versions_and_builds_follow_every_page(server: FakeServer, client: Client) -> None:
    server.route("GET", "/2025-09-09/microvm-images", paged([[samples.image("a")], [samples.image("b")]]))
    server.route("GET", "/2025-09-09/microvm-images/ci/versions",
                 paged([[samples.version("1")], [samples.version("2")], [samples.version("3")]]))
    server.route("GET", "/2025-09-09/microvm-images/ci/versions/3/builds",
                 paged([[samples.build("a" * 32)], [samples.build("c" * 32)]]))
    assert [i.name for i in client.images.list()] == ["a", "b"]
    assert [v.imageVersion for v in client.images.versions("ci")] == ["1", "2", "3"]
    assert [b.buildId for b in client.images.builds("ci", "3")] == ["a" * 32, "c" * 32]


def test_name_filter_is_sent(server: FakeServer, client: Client) -> None:
    server.route("GET", "/2025-09-09/microvm-images", Reply(200, {"items": []}))
    client.images.list(name_filter="code")
    assert server.requests[0].query == {"nameFilter": "code"}


def test_members_a_newer_server_adds_are_ignored(server: FakeServer, client: Client) -> None:
    vm = samples.microvm(samples.vm_id(1), newTopLevel=1, idlePolicy={
        "maxIdleDurationSeconds": 60, "suspendedDurationSeconds": 0, "autoResumeEnabled": True, "newNested": "x"})
    server.route("GET", f"/2025-09-09/microvms/{samples.vm_id(1)}", Reply(200, vm))
    detail = client.microvms.get(samples.vm_id(1))
    assert detail.idlePolicy is not None and detail.idlePolicy.maxIdleDurationSeconds == 60
    assert detail.startedAt.timestamp() == samples.T0
