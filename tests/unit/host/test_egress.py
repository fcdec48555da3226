"""Unit tests of the egress network's pure helpers: resolv.conf parsing, rule text, readiness checks."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from ember.errors import HostError
from ember.host import egress
from ember.host.egress import (
    COUNTERS,
    DEFAULT_CONFIG,
    EgressConfig,
    connected_networks,
    netns_ready,
    normalize_listing,
    parse_resolv_conf,
    render_host_rules,
    render_netns_rules,
    render_resolv_conf,
    select_resolvers,
    transaction,
)

SYSTEMD_STUB = "# stub\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n"
SYSTEMD_UPSTREAM = "nameserver 192.168.1.1\nnameserver 2001:db8::53\nnameserver 9.9.9.9\n"


def test_parse_resolv_conf_keeps_order_and_skips_junk() -> None:
    text = ("# comment\n; also a comment\nsearch example.org\nnameserver 10.255.255.53\n"
            "nameserver   1.1.1.1  # trailing\nnameserver not-an-ip\nnameserver fe80::1%eth0\n"
            "nameserver 10.255.255.53\nnameserver\n  nameserver 8.8.8.8\n")
    assert parse_resolv_conf(text) == ["10.255.255.53", "1.1.1.1", "fe80::1", "8.8.8.8"]
    assert parse_resolv_conf("") == []


def test_select_resolvers_uses_ipv4_non_loopback_servers() -> None:
    assert select_resolvers("nameserver 10.255.255.53\nnameserver ::1\nnameserver 2001:db8::1\n", None) == (
        ["10.255.255.53"], None)


def test_select_resolvers_falls_back_to_systemd_upstreams_behind_a_loopback_stub() -> None:
    assert select_resolvers(SYSTEMD_STUB, SYSTEMD_UPSTREAM) == (["192.168.1.1", "9.9.9.9"], None)


def test_select_resolvers_warns_when_nothing_is_usable() -> None:
    servers, warning = select_resolvers(SYSTEMD_STUB, None)
    assert servers == [] and warning is not None and "127.0.0.53" in warning
    servers, warning = select_resolvers("search x\n", None)
    assert servers == [] and warning is not None and "no nameserver" in warning
    # A stub with a systemd file that lists nothing usable either.
    assert select_resolvers(SYSTEMD_STUB, "nameserver 127.0.0.1\n")[0] == []


def test_render_resolv_conf() -> None:
    text = render_resolv_conf(["10.255.255.53", "9.9.9.9"])
    assert parse_resolv_conf(text) == ["10.255.255.53", "9.9.9.9"]
    assert text.startswith("#")


def test_host_rules_refuse_host_private_metadata_and_exempt_dns_only() -> None:
    text = render_host_rules(DEFAULT_CONFIG, ["10.255.255.53"], ["192.0.2.0/24"])
    assert text.startswith("table inet ember_egress {")
    assert "elements = { 10.255.255.53 }" in text
    # Input hook: everything from the veth to the host is refused, bar DNS to the resolvers.
    assert 'iifname "ember-eg0" ip daddr @resolvers udp dport 53 accept' in text
    assert 'iifname "ember-eg0" ip daddr @resolvers tcp dport 53 accept' in text
    assert 'iifname "ember-eg0" counter name "refused_host" goto refuse' in text
    for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
                "127.0.0.0/8", "224.0.0.0/4", "192.0.2.0/24"):
        assert net in text, net
    for name in COUNTERS:
        assert f"counter {name} {{" in text
        assert f'counter name "{name}"' in text, name
    assert "meta l4proto tcp reject with tcp reset" in text
    assert "ip saddr 10.231.0.0/30 oifname != \"ember-eg0\" masquerade" in text
    # The DNS exemption comes before every refusal in the forward chain.
    fwd = text[text.index("chain forward"):]
    assert fwd.index("@resolvers udp dport 53 accept") < fwd.index('"refused_private"')
    assert fwd.index("ct state established,related accept") < fwd.index('"refused_inbound" drop')


def test_host_rules_without_resolvers_or_connected_networks() -> None:
    text = render_host_rules(DEFAULT_CONFIG, [], [])
    assert "set resolvers { type ipv4_addr; }" in text
    assert "refused_local_net\" goto" not in text


def test_unprotected_rules_refuse_nothing_but_keep_the_network() -> None:
    host = render_host_rules(DEFAULT_CONFIG, ["10.255.255.53"], ["192.0.2.0/24"], protect=False)
    ns = render_netns_rules(DEFAULT_CONFIG, protect=False)
    for text in (host, ns):
        assert "goto refuse" not in text and " drop" not in text
    assert "masquerade" in host


def test_netns_rules_refuse_the_namespaces_own_addresses() -> None:
    text = render_netns_rules(DEFAULT_CONFIG)
    assert 'fib daddr type local counter name "refused_netns_local" goto refuse' in text
    # The refusals' own replies are let through, before the refusal.
    assert text.index("tcp flags rst accept") < text.index("fib daddr type local")


def test_config_addresses_and_validation() -> None:
    cfg = EgressConfig(netns="t", host_if="t0", ns_if="t1", subnet="10.231.0.4/30", table="t")
    assert (cfg.host_addr, cfg.ns_addr, cfg.prefixlen) == ("10.231.0.5", "10.231.0.6", 30)
    assert (DEFAULT_CONFIG.host_addr, DEFAULT_CONFIG.ns_addr) == ("10.231.0.1", "10.231.0.2")
    with pytest.raises(ValueError, match="interface name"):
        EgressConfig(host_if="a-much-too-long-name")
    with pytest.raises(ValueError, match="table name"):
        EgressConfig(table="bad table")
    with pytest.raises(ValueError, match="too small"):
        EgressConfig(subnet="10.231.0.0/31")


def test_transaction_replaces_the_table_atomically() -> None:
    text = transaction("ember_egress", "table inet ember_egress {\n}\n")
    assert text.splitlines()[:2] == ["table inet ember_egress", "delete table inet ember_egress"]


def test_normalize_listing_ignores_counter_values_and_handles() -> None:
    a = "counter c {\n packets 12 bytes 720\n}\nchain x { # handle 3\n"
    b = "counter c {\n packets 0 bytes 0\n}\nchain x { # handle 9\n"
    assert normalize_listing(a) == normalize_listing(b)


LINKS = [
    {"ifname": "lo", "flags": ["LOOPBACK", "UP"], "addr_info": [{"family": "inet", "local": "127.0.0.1",
                                                                 "prefixlen": 8}]},
    {"ifname": "eth0", "flags": ["UP"], "addr_info": [
        {"family": "inet", "local": "192.0.2.2", "prefixlen": 24},
        {"family": "inet6", "local": "fd00::2", "prefixlen": 64}]},
    {"ifname": "wg0", "flags": ["UP"], "addr_info": [{"family": "inet", "local": "10.9.0.1", "prefixlen": 32}]},
    {"ifname": "ember-eg0", "flags": ["UP"], "addr_info": [{"family": "inet", "local": "10.231.0.1",
                                                            "prefixlen": 30}]},
]


def test_connected_networks_are_the_hosts_lans() -> None:
    assert connected_networks(LINKS, {"ember-eg0"}) == ["192.0.2.0/24"]


def test_netns_ready() -> None:
    cfg = DEFAULT_CONFIG
    ns = [{"ifname": "lo", "flags": ["LOOPBACK", "UP"], "addr_info": [{"family": "inet", "local": "127.0.0.1",
                                                                       "prefixlen": 8}]},
          {"ifname": "ember-eg1", "flags": ["UP"], "addr_info": [{"family": "inet", "local": "10.231.0.2",
                                                                  "prefixlen": 30}]}]
    routes = [{"dst": "default", "gateway": "10.231.0.1", "dev": "ember-eg1"}]
    assert netns_ready(cfg, LINKS, ns, routes)
    assert not netns_ready(cfg, LINKS, None, [])
    assert not netns_ready(cfg, LINKS, ns, [])
    assert not netns_ready(cfg, LINKS[:3], ns, routes)
    down = [ns[0], {**ns[1], "flags": []}]
    assert not netns_ready(cfg, LINKS, down, routes)
    v6 = [ns[0], {**ns[1], "addr_info": [*ns[1]["addr_info"], {"family": "inet6", "local": "fe80::1"}]}]
    assert not netns_ready(cfg, LINKS, v6, routes)


def test_ensure_egress_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(HostError, match="egress needs root: start ember as root or run without INTERNET_EGRESS"):
        egress.ensure_egress()


def test_missing_tools_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda name, path=None: None if name == "nft" else "/usr/sbin/ip")
    with pytest.raises(HostError, match=r"apt-get install nftables"):
        egress.ensure_egress()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None, reason="nft --check needs root and nftables")
@pytest.mark.parametrize("protect", [True, False])
def test_generated_rules_pass_nft_check(protect: bool) -> None:
    cfg = EgressConfig(netns="ember-egcheck", host_if="ember-egc0", ns_if="ember-egc1", subnet="10.231.0.8/30",
                       table="ember_egcheck")
    for body in (render_host_rules(cfg, ["10.255.255.53", "9.9.9.9"], ["192.0.2.0/24"], protect),
                 render_netns_rules(cfg, protect)):
        proc = subprocess.run(["nft", "--check", "-f", "-"], input=transaction(cfg.table, body), text=True,
                              capture_output=True)
        assert proc.returncode == 0, proc.stderr
