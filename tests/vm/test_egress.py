"""Guest egress with real VMs: the internet is reachable, the host, private networks and the namespace are not.

Every attack is made from inside a guest (python3 in the test rootfs) against canary TCP
listeners that record any connection: one on the host's 0.0.0.0 (so its 127.0.0.1, its
primary address and the veth's host end) and one inside the egress namespace. The same
attacks against a network built with ``protect=False`` must reach the canaries, or these
tests would prove nothing.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import ember.host.egress as egress_mod
from ember.host.egress import EgressConfig, egress_status, ensure_egress, teardown_egress
from ember.host.host import VM, Host, ImageSnapshot
from tests.framework.network import Canary, attack, default_gateway, guest_json, host_primary_address

pytestmark = [
    pytest.mark.vm,
    pytest.mark.skipif(os.geteuid() != 0, reason="egress needs root"),
]

MIRROR_HOST = "deb.debian.org"  # the host's apt mirror (/etc/apt/sources.list.d/debian.sources)
MIRROR_PATH = "/debian/dists/bookworm/Release"
# A network of its own for the unprotected run: production's ember-egress stays protected throughout.
UNPROTECTED = EgressConfig(netns="ember-egtest", host_if="ember-egt0", ns_if="ember-egt1",
                           subnet="10.231.0.4/30", table="ember_egtest")

FETCH = r"""
import os
os.environ["RES_OPTIONS"] = "timeout:2 attempts:2"
import http.client, json, socket, sys, time
t0 = time.monotonic()
addr = socket.getaddrinfo(sys.argv[1], 80, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
t1 = time.monotonic()
c = http.client.HTTPConnection(sys.argv[1], 80, timeout=30)
c.request("GET", sys.argv[2])
r = c.getresponse()
body = r.read()
t2 = time.monotonic()
print(json.dumps({"addr": addr, "status": r.status, "bytes": len(body), "dns_s": t1 - t0, "get_s": t2 - t1}))
"""

RESOLVE = r"""
import os
os.environ["RES_OPTIONS"] = "timeout:1 attempts:1"
import socket, sys
try:
    print(socket.getaddrinfo(sys.argv[1], 80, socket.AF_INET)[0][4][0])
except OSError as e:
    print("failed", e)
"""


def counters(cfg: EgressConfig = egress_mod.DEFAULT_CONFIG) -> dict[str, int]:
    st = egress_status(cfg)
    return {k: v["packets"] for k, v in {**st["counters"], **st["netns_counters"]}.items()}


@pytest.fixture
def canaries() -> Iterator[tuple[Canary, Canary]]:
    """(a canary on the host's 0.0.0.0, a canary inside the production egress namespace)."""
    net = ensure_egress()
    on_host, in_netns = Canary(), Canary(net.netns)
    yield on_host, in_netns
    on_host.close()
    in_netns.close()


@pytest.fixture(scope="module")
async def image(host: Host, rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> ImageSnapshot:
    """An image booted without egress (like every image), this module's own.

    Not the session's ``image`` fixture: that one consumes the session's ``booted`` VM,
    which tests/vm/test_host.py (collected after this module) still needs.
    """
    vm = await host.boot(rootfs)
    assert vm.spec.network == "none"
    return await host.snapshot_image(vm, tmp_path_factory.mktemp("egress-images") / "img")


@pytest.fixture(scope="module")
async def egress_vm(host: Host, image: ImageSnapshot) -> AsyncIterator[VM]:
    """A clone of the (network-less) image, restored with egress: what production does."""
    vm = await host.clone(image, egress=True)
    yield vm
    await host.destroy(vm)


async def test_guest_without_egress_reaches_nothing(host: Host, image: ImageSnapshot) -> None:
    vm = await host.clone(image)
    try:
        assert vm.spec.network == "none" and vm.spec.netns is None
        agent = vm.require_agent()
        mirror_ip = subprocess.run(["getent", "ahostsv4", MIRROR_HOST], capture_output=True, text=True,
                                   check=True).stdout.split()[0]
        out = await attack(agent, [("10.0.2.2", 80), (mirror_ip, 80)])
        assert all(r != "connected" for r, _ in out.values()), out
        res = await agent.exec(["/usr/bin/python3", "-c", RESOLVE, MIRROR_HOST], timeout=60)
        assert res.stdout.decode().startswith("failed"), res.stdout
    finally:
        await host.destroy(vm)


async def test_egress_resolves_and_fetches_the_package_mirror(egress_vm: VM) -> None:
    assert egress_vm.spec.network == "user" and egress_vm.spec.netns == "ember-egress"
    t0 = time.monotonic()
    got = await guest_json(egress_vm.require_agent(), FETCH, MIRROR_HOST, MIRROR_PATH)
    wall = time.monotonic() - t0
    assert got["status"] == 200, got
    assert int(got["bytes"]) > 1000  # type: ignore[call-overload]
    print(f"\negress GET http://{MIRROR_HOST}{MIRROR_PATH}: {got}; guest python3 run {wall:.2f} s")


async def test_egress_refuses_the_host_private_networks_and_the_namespace(
        egress_vm: VM, canaries: tuple[Canary, Canary]) -> None:
    on_host, in_netns = canaries
    cfg = egress_mod.DEFAULT_CONFIG
    primary = host_primary_address()
    resolver = egress_status()["resolvers"][0] if egress_status()["resolvers"] else "10.255.255.53"
    # target -> the counter that must count it
    targets: dict[tuple[str, int], str] = {
        ("10.0.2.2", on_host.port): "refused_netns_local",     # slirp's "host": the namespace's loopback
        ("10.0.2.2", in_netns.port): "refused_netns_local",
        (cfg.ns_addr, in_netns.port): "refused_netns_local",   # the namespace's own address (other VMs' NAT)
        (primary, on_host.port): "refused_host",               # the host's primary address
        (cfg.host_addr, on_host.port): "refused_host",         # the veth's host end
        ("169.254.169.254", 80): "refused_metadata",
        (resolver, 80): "refused_private",                     # a resolver: DNS only, not port 80
        ("192.168.0.1", 80): "refused_private",
    }
    gw = default_gateway()
    if gw is not None:
        private = any(ipaddress.ip_address(gw) in ipaddress.ip_network(n) for n in egress_mod.PRIVATE_NETS)
        targets[(gw, 80)] = "refused_private" if private else "refused_local_net"
    before = counters()
    out = await attack(egress_vm.require_agent(), list(targets))
    after = counters()
    print("\nrefused:", json.dumps(out, indent=1), "\ncounters before/after:", before, after)

    assert all(r != "connected" for r, _ in out.values()), out
    # Refused, not silently dropped: every attempt failed well before its 3 s timeout.
    assert all(float(t) < 2.5 for _, t in out.values()), out  # type: ignore[arg-type]
    time.sleep(0.2)
    assert on_host.hits == [] and in_netns.hits == [], (on_host.hits, in_netns.hits)
    expected: dict[str, int] = {}
    for name in targets.values():
        expected[name] = expected.get(name, 0) + 1
    for name, n in expected.items():
        assert after[name] - before[name] >= n, (name, before, after)

    # Egress still works right after (the refusals did not break the guest's networking).
    got = await guest_json(egress_vm.require_agent(), FETCH, MIRROR_HOST, MIRROR_PATH)
    assert got["status"] == 200


@pytest.fixture
async def unprotected_vm(host: Host, image: ImageSnapshot, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[VM]:
    """A clone with egress through a separate network built with ``protect=False`` (removed afterwards)."""
    net = ensure_egress(UNPROTECTED, protect=False)
    monkeypatch.setattr(egress_mod, "ensure_egress", lambda: net)
    vm = await host.clone(image, egress=True)
    monkeypatch.undo()
    try:
        assert vm.spec.netns == UNPROTECTED.netns
        yield vm
    finally:
        await host.destroy(vm)
        teardown_egress(UNPROTECTED)
        # Production's network is untouched and still refuses.
        assert egress_status()["counters"].keys() >= {"refused_host", "refused_private"}
        assert "reject" in subprocess.run(["nft", "list", "table", "inet", "ember_egress"], capture_output=True,
                                          text=True, check=True).stdout


async def test_without_protection_the_same_attacks_succeed(unprotected_vm: VM) -> None:
    cfg = UNPROTECTED
    on_host, in_netns = Canary(), Canary(cfg.netns)
    try:
        primary = host_primary_address()
        targets = [(primary, on_host.port), (cfg.host_addr, on_host.port), ("10.0.2.2", in_netns.port),
                   ("10.0.2.2", on_host.port)]
        out = await attack(unprotected_vm.require_agent(), targets)
        time.sleep(0.2)
        print("\nunprotected:", json.dumps(out, indent=1), on_host.hits, in_netns.hits)
        # The host's own addresses and the namespace's loopback are reachable without the rules ...
        for t in targets[:3]:
            assert out[f"{t[0]}:{t[1]}"][0] == "connected", out
        assert {local for _, local in on_host.hits} >= {primary, cfg.host_addr}, on_host.hits
        assert [local for _, local in in_netns.hits] == ["127.0.0.1"], in_netns.hits
        # ... but the host's loopback never is: 10.0.2.2 is the namespace's loopback, not the host's.
        assert out[f"10.0.2.2:{on_host.port}"][0] != "connected"
        assert all(local != "127.0.0.1" for _, local in on_host.hits), on_host.hits
    finally:
        on_host.close()
        in_netns.close()


async def test_suspended_egress_clone_resumes_with_egress(host: Host, image: ImageSnapshot) -> None:
    vm = await host.clone(image, egress=True)
    try:
        await host.suspend(vm)
        await host.resume(vm)
        assert vm.spec.network == "user" and vm.spec.netns == "ember-egress"
        got = await guest_json(vm.require_agent(), FETCH, MIRROR_HOST, MIRROR_PATH)
        assert got["status"] == 200, got
    finally:
        await host.destroy(vm)


def test_ensure_egress_is_idempotent_concurrent_and_repairs(tmp_path: Path) -> None:
    cfg = UNPROTECTED
    try:
        script = (f"from ember.host.egress import EgressConfig, ensure_egress\n"
                  f"ensure_egress(EgressConfig(**{cfg.__dict__!r}))\n")
        procs = [subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
        for p in procs:
            _, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
        net = ensure_egress(cfg)
        assert net.protected and net.netns == cfg.netns
        table = ["nft", "-a", "list", "table", "inet", cfg.table]
        first = subprocess.run(table, capture_output=True, text=True, check=True).stdout
        t0 = time.monotonic()
        ensure_egress(cfg)
        print(f"\nensure_egress with nothing to do: {(time.monotonic() - t0) * 1000:.0f} ms")
        # Unchanged: not reloaded (a reload would renumber the handles and reset the counters).
        assert subprocess.run(table, capture_output=True, text=True, check=True).stdout == first

        # Someone flushes the rules, deletes the namespace: the next call repairs both.
        subprocess.run(["nft", "flush", "chain", "inet", cfg.table, "forward"], check=True)
        ensure_egress(cfg)
        assert "refused_private" in subprocess.run(table, capture_output=True, text=True, check=True).stdout
        subprocess.run(["ip", "netns", "del", cfg.netns], check=True)
        ensure_egress(cfg)
        st = egress_status(cfg)
        assert st["netns_exists"] and st["host_link"] and st["netns_counters"], st
    finally:
        teardown_egress(cfg)
    assert not egress_status(cfg)["netns_exists"]
    assert subprocess.run(["ip", "link", "show", cfg.host_if], capture_output=True).returncode != 0
