"""Fixtures that boot real VMs: one booted VM turned into an image, and clones of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ember.host.host import VM, Host, ImageSnapshot
from ember.host.kit import load_kit, test_rootfs
from tests.framework.guest_apps import ECHO_AND_COUNTER_APP
from tests.framework.vms import counter_info, qemu_pids_under, wait_app_ready

pytestmark = pytest.mark.vm


@pytest.fixture(scope="session")
def kit():  # type: ignore[no-untyped-def]
    return load_kit()


@pytest.fixture(scope="session")
def rootfs(kit) -> Path:  # type: ignore[no-untyped-def]
    return test_rootfs()


@pytest.fixture(scope="session")
async def host(tmp_path_factory: pytest.TempPathFactory, kit) -> AsyncIterator[Host]:  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("ember-home")
    h = Host(home=home, kit=kit)
    yield h
    await h.close()
    assert qemu_pids_under(home) == [], "a QEMU process outlived its test session"


@pytest.fixture(scope="session")
async def booted(host: Host, rootfs: Path) -> AsyncIterator[VM]:
    """A cold-booted VM running the echo/counter app (consumed by the `image` fixture)."""
    vm = await host.boot(rootfs, memory_mib=512)
    await vm.require_agent().put_file("/root/app.py", ECHO_AND_COUNTER_APP.encode())
    await vm.require_agent().app_start(["python3", "/root/app.py"])
    await wait_app_ready(vm.require_agent())
    yield vm
    if vm.state != "snapshotted":
        await host.destroy(vm)


@pytest.fixture(scope="session")
async def image(host: Host, booted: VM, tmp_path_factory: pytest.TempPathFactory) -> ImageSnapshot:
    """The booted VM frozen as an image; records the app's (pid, counter) at snapshot time."""
    pid, counter, _ = await counter_info(booted.require_agent())
    img = await host.snapshot_image(booted, tmp_path_factory.mktemp("images") / "img")
    img_info[img.dir] = (pid, counter)
    return img


img_info: dict[Path, tuple[int, int]] = {}


@pytest.fixture
async def clone(host: Host, image: ImageSnapshot) -> AsyncIterator[VM]:
    vm = await host.clone(image)
    yield vm
    await host.destroy(vm)
