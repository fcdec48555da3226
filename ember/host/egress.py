"""Internet egress for guests, with no way back to the host, the control plane, private networks or other guests.

Mechanism
---------
A VM with egress gets QEMU's user-mode NAT (slirp: ``-netdev user``). Slirp is not a
network device: it turns the guest's TCP/UDP flows into ordinary sockets of the QEMU
process, and it maps the gateway address 10.0.2.2 to *that process's* loopback. Run on
the host, slirp would hand every guest the host's 127.0.0.1 (databases, the Ember API,
agents listening on loopback), the host's own addresses, the metadata service and the
private networks the host sits on (measured here: all of them were reachable). Its
``restrict=on`` mode cuts egress altogether.

So QEMU runs inside a dedicated network namespace, ``ember-egress``, that Ember owns:

* Nothing listens on its loopback, and a small table inside the namespace refuses
  every flow to the namespace's own addresses: 10.0.2.2 leads nowhere.
* Its only way out is a veth pair: ``ember-eg0`` 10.231.0.1/30 on the host,
  ``ember-eg1`` 10.231.0.2/30 inside, default route via 10.231.0.1. The host
  forwards (``net.ipv4.ip_forward=1``) and masquerades what comes out of it.
* IPv6 is disabled inside the namespace and on the host end of the veth.
* ``/etc/netns/ember-egress/resolv.conf`` lists the host's usable DNS resolvers;
  ``ip netns exec`` bind-mounts it over /etc/resolv.conf for QEMU, and slirp's DNS
  proxy (10.0.2.3 in the guest) reads it.

One nftables table on the host, ``inet ember_egress``, replaced atomically (``nft -f``),
decides what leaves the veth. Everything arriving from ``ember-eg0``:

* addressed to the host itself (any local address: the input hook) is rejected,
  except DNS (udp/tcp 53) to a resolver the host itself uses;
* forwarded to 127.0.0.0/8, 0.0.0.0/8, 224.0.0.0/4, 240.0.0.0/4 (loopback, multicast,
  reserved), 169.254.0.0/16 (link-local: the metadata service 169.254.169.254),
  10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10 (private and CGNAT) or
  to the host's directly connected IPv4 networks (its LAN neighbours and gateway)
  is rejected, again except DNS to the resolvers;
* any IPv6 is dropped;
* the rest is forwarded to the internet and masqueraded.

New connections *towards* the namespace are dropped (only replies enter). The table
inside the namespace matters too: the slirp sockets of all egress VMs share the
namespace, and no guest may reach another's (a UDP socket slirp opened for one guest
would otherwise accept datagrams that another guest sends to 10.231.0.2).
Each QEMU has its own slirp stack and there is no ``hostfwd``, so guests never see each
other's packets and nothing outside can open a connection to a guest.

Every refusal has a named counter (``egress_status()``, or ``nft list counters table
inet ember_egress``). Building the network needs root; so does ``ip netns exec``.

``ensure_egress()`` is idempotent and cheap when nothing changed: it is called before
every VM that gets egress, under a file lock, and repairs whatever is missing or
different (a flushed table, a deleted namespace, a changed resolver).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import ipaddress
import json
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ember.errors import HostError

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_CONFIG", "EgressConfig", "EgressNetwork", "egress_status", "ensure_egress", "machine_network",
           "teardown_egress"]

RUN_DIR = Path("/run/ember")
NETNS_ETC = Path("/etc/netns")
NEEDS_ROOT = "egress needs root: start ember as root or run without INTERNET_EGRESS"
CMD_TIMEOUT_S = 30.0

# Destinations a guest must never reach (besides the host's own addresses, refused in the input hook).
SPECIAL_NETS = ("0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4")
METADATA_NETS = ("169.254.0.0/16",)
PRIVATE_NETS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
# Counter name -> what it counts. Every refusal increments exactly one of them.
COUNTERS = {
    "refused_host": "to any address of the host itself",
    "refused_special": "to loopback, multicast or reserved addresses",
    "refused_metadata": "to link-local addresses (the metadata service 169.254.169.254)",
    "refused_private": "to private and CGNAT networks",
    "refused_local_net": "to the host's directly connected networks (LAN neighbours, gateway)",
    "refused_ipv6": "any IPv6 from the namespace",
    "refused_inbound": "new connections from outside towards the namespace",
}
NETNS_COUNTERS = {"refused_netns_local": "to the namespace's own addresses (other VMs' user-mode NAT sockets)"}


@dataclass(frozen=True)
class EgressConfig:
    """Names and addresses of one egress network. ``DEFAULT_CONFIG`` is the one VMs use; tests make others."""

    netns: str = "ember-egress"
    host_if: str = "ember-eg0"
    ns_if: str = "ember-eg1"
    subnet: str = "10.231.0.0/30"
    table: str = "ember_egress"

    def __post_init__(self) -> None:
        for name in (self.host_if, self.ns_if):
            if not re.fullmatch(r"[A-Za-z0-9_.-]{1,15}", name):
                raise ValueError(f"bad interface name {name!r} (at most 15 of [A-Za-z0-9_.-])")
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", self.netns):
            raise ValueError(f"bad namespace name {self.netns!r}")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", self.table):
            raise ValueError(f"bad nftables table name {self.table!r}")
        if ipaddress.ip_network(self.subnet).num_addresses < 4:
            raise ValueError(f"subnet {self.subnet} is too small for a veth pair")

    @property
    def network(self) -> ipaddress.IPv4Network:
        net = ipaddress.ip_network(self.subnet)
        assert isinstance(net, ipaddress.IPv4Network)
        return net

    @property
    def host_addr(self) -> str:
        """The host end of the veth (the namespace's default gateway)."""
        return str(self.network.network_address + 1)

    @property
    def ns_addr(self) -> str:
        return str(self.network.network_address + 2)

    @property
    def prefixlen(self) -> int:
        return self.network.prefixlen


DEFAULT_CONFIG = EgressConfig()


@dataclass(frozen=True)
class EgressNetwork:
    """A ready egress network: start QEMU with ``ip netns exec <netns>``."""

    netns: str
    config: EgressConfig
    resolvers: tuple[str, ...]
    protected: bool


# -- pure helpers ---------------------------------------------------------------


def parse_resolv_conf(text: str) -> list[str]:
    """The ``nameserver`` addresses of a resolv.conf, in order, invalid ones skipped."""
    out: list[str] = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            addr = fields[1].split("%", 1)[0]  # fe80::1%eth0
            try:
                ipaddress.ip_address(addr)
            except ValueError:
                continue
            if addr not in out:
                out.append(addr)
    return out


def select_resolvers(resolv_conf: str, systemd_resolv_conf: str | None) -> tuple[list[str], str | None]:
    """The IPv4 resolvers the namespace can use, and a warning when there are none.

    Loopback resolvers (systemd-resolved's 127.0.0.53, a local dnsmasq) are unreachable
    from the namespace: then the upstream servers systemd-resolved lists in
    /run/systemd/resolve/resolv.conf are used. IPv6 resolvers are skipped (no IPv6 in
    the namespace).
    """
    def usable(addrs: list[str]) -> list[str]:
        return [a for a in addrs if ipaddress.ip_address(a).version == 4 and not ipaddress.ip_address(a).is_loopback]

    servers = parse_resolv_conf(resolv_conf)
    ok = usable(servers)
    if not ok and any(ipaddress.ip_address(a).is_loopback for a in servers) and systemd_resolv_conf is not None:
        ok = usable(parse_resolv_conf(systemd_resolv_conf))
    if ok:
        return ok, None
    if not servers:
        return [], "the host's /etc/resolv.conf lists no nameserver: name resolution in guests will fail"
    return [], (f"none of the host's resolvers ({', '.join(servers)}) is reachable from the egress namespace "
                "(loopback or IPv6 only, and no /run/systemd/resolve/resolv.conf upstreams): "
                "name resolution in guests will fail")


def render_resolv_conf(resolvers: list[str]) -> str:
    head = "# Written by Ember (ember.host.egress): the egress namespace's resolvers.\n"
    return head + "".join(f"nameserver {r}\n" for r in resolvers)


def _set(items: list[str] | tuple[str, ...]) -> str:
    return "{ " + ", ".join(items) + " }"


# A TCP reset is what makes user-mode NAT refuse the guest's connection at once (the guest sees
# ECONNREFUSED); after an ICMP error it just lets the guest's SYN time out.
_REFUSE_CHAIN = ["  chain refuse {",
                 "    meta l4proto tcp reject with tcp reset",
                 "    reject with icmpx type admin-prohibited",
                 "  }"]


def render_host_rules(cfg: EgressConfig, resolvers: list[str], connected: list[str], protect: bool = True) -> str:
    """The host's nftables table for ``cfg`` (the body of one atomic ``nft -f`` transaction)."""
    eg = f'"{cfg.host_if}"'
    reject = "goto refuse"
    lines = [f"table inet {cfg.table} {{",
             '  comment "managed by ember (ember.host.egress): guest egress network; do not edit"']
    for name in COUNTERS:
        lines.append(f'  counter {name} {{ comment "{COUNTERS[name]}" }}')
    lines.append("  set resolvers { type ipv4_addr;" + (f" elements = {_set(resolvers)};" if resolvers else "") + " }")
    lines += _REFUSE_CHAIN
    lines += ["  chain input {", "    type filter hook input priority filter; policy accept;"]
    if protect:
        lines += [f'    iifname {eg} meta nfproto ipv6 counter name "refused_ipv6" drop',
                  f"    iifname {eg} ip daddr @resolvers udp dport 53 accept",
                  f"    iifname {eg} ip daddr @resolvers tcp dport 53 accept",
                  f'    iifname {eg} counter name "refused_host" {reject}']
    lines += ["  }", "  chain forward {", "    type filter hook forward priority filter; policy accept;",
              # The host's uplink may have a smaller MTU than the veth.
              f"    iifname {eg} tcp flags syn tcp option maxseg size set rt mtu"]
    if protect:
        lines += [f"    oifname {eg} ct state established,related accept",
                  f'    oifname {eg} counter name "refused_inbound" drop',
                  f"    iifname != {eg} return",
                  '    meta nfproto ipv6 counter name "refused_ipv6" drop',
                  "    ip daddr @resolvers udp dport 53 accept",
                  "    ip daddr @resolvers tcp dport 53 accept",
                  f'    fib daddr type local counter name "refused_host" {reject}',
                  f'    ip daddr {_set(SPECIAL_NETS)} counter name "refused_special" {reject}',
                  f'    ip daddr {_set(METADATA_NETS)} counter name "refused_metadata" {reject}',
                  f'    ip daddr {_set(PRIVATE_NETS)} counter name "refused_private" {reject}']
        if connected:
            lines.append(f'    ip daddr {_set(connected)} counter name "refused_local_net" {reject}')
    lines += ["  }", "  chain postrouting {", "    type nat hook postrouting priority srcnat; policy accept;",
              f"    ip saddr {cfg.network} oifname != {eg} masquerade", "  }", "}"]
    return "\n".join(lines) + "\n"


def render_netns_rules(cfg: EgressConfig, protect: bool = True) -> str:
    """The table inside the namespace: no flow from one VM's user-mode NAT to the namespace's own sockets."""
    lines = [f"table inet {cfg.table} {{", '  comment "managed by ember (ember.host.egress)"']
    for name, what in NETNS_COUNTERS.items():
        lines.append(f'  counter {name} {{ comment "{what}" }}')
    lines += _REFUSE_CHAIN
    lines += ["  chain output {", "    type filter hook output priority filter; policy accept;"]
    if protect:
        lines += ["    meta nfproto ipv6 drop",
                  # A refusal's own reset or ICMP error goes to a local address too. Guests cannot send
                  # either: user-mode NAT turns their flows into ordinary sockets (and never relays ICMP errors).
                  "    tcp flags rst accept",
                  "    icmp type { destination-unreachable, time-exceeded, parameter-problem } accept",
                  '    fib daddr type local counter name "refused_netns_local" goto refuse']
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


def transaction(table: str, body: str) -> str:
    """Create-or-replace ``table`` atomically: one ``nft -f`` transaction that deletes and re-adds it."""
    return f"table inet {table}\ndelete table inet {table}\n{body}"


def normalize_listing(listing: str) -> str:
    """An ``nft list table`` output with counter values and handles zeroed: equal when the rules are equal."""
    listing = re.sub(r"packets \d+ bytes \d+", "packets 0 bytes 0", listing)
    return re.sub(r"# handle \d+", "", listing)


def connected_networks(links: list[dict[str, Any]], exclude_ifs: set[str]) -> list[str]:
    """The IPv4 networks the host sits on directly, from ``ip -j addr show``: its LANs (not loopback, not Ember's)."""
    nets: list[str] = []
    for link in links:
        name = str(link.get("ifname", ""))
        if name in exclude_ifs or name == "lo" or name.startswith("ember-"):
            continue
        for a in link.get("addr_info", []):
            if a.get("family") != "inet" or "local" not in a or int(a.get("prefixlen", 32)) >= 32:
                continue
            net = ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False)
            if not net.is_loopback and str(net) not in nets:
                nets.append(str(net))
    return nets


def netns_ready(cfg: EgressConfig, host_links: list[dict[str, Any]], ns_links: list[dict[str, Any]] | None,
                ns_routes: list[dict[str, Any]]) -> bool:
    """Whether the veth pair, its addresses, the namespace's loopback and default route are as ``cfg`` wants.

    ``host_links``/``ns_links``: ``ip -j addr show`` on the host and in the namespace (None: no namespace);
    ``ns_routes``: ``ip -j -4 route show default`` in the namespace. IPv6 addresses mean IPv6 is not off.
    """
    if ns_links is None:
        return False

    def has(links: list[dict[str, Any]], name: str, addr: str | None) -> bool:
        for link in links:
            if link.get("ifname") != name:
                continue
            infos = link.get("addr_info", [])
            return ("UP" in link.get("flags", []) and all(a.get("family") != "inet6" for a in infos)
                    and (addr is None or any(a.get("local") == addr and a.get("prefixlen") == cfg.prefixlen
                                             for a in infos)))
        return False

    return (has(host_links, cfg.host_if, cfg.host_addr) and has(ns_links, cfg.ns_if, cfg.ns_addr)
            and has(ns_links, "lo", None)
            and any(r.get("dst") == "default" and r.get("gateway") == cfg.host_addr for r in ns_routes))


# -- commands ---------------------------------------------------------------------


def _tool(name: str, package: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if path is None:
        raise HostError(f"egress needs the `{name}` command: apt-get install {package}")
    return path


def _tools() -> tuple[str, str]:
    if os.geteuid() != 0:
        raise HostError(NEEDS_ROOT)
    return _tool("ip", "iproute2"), _tool("nft", "nftables")


def _run(argv: list[str], *, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=CMD_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HostError(f"egress setup: {' '.join(argv)} failed: {exc}") from exc
    if check and proc.returncode != 0:
        raise HostError(f"egress setup: {' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def _json(argv: list[str]) -> Any:
    out = _run(argv).stdout.strip()
    return json.loads(out) if out else []


@contextlib.contextmanager
def _locked(cfg: EgressConfig) -> Iterator[None]:
    RUN_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(RUN_DIR / f"egress-{cfg.netns}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_if_changed(path: Path, text: str, mode: int = 0o644) -> bool:
    try:
        if path.read_text() == text:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def _write_sysctl(path: str, value: str) -> None:
    try:
        if Path(path).read_text().strip() != value:
            Path(path).write_text(value + "\n")
    except OSError as exc:
        raise HostError(f"egress setup: cannot set {path} to {value}: {exc}") from exc


def _netns_exists(ip: str, netns: str) -> bool:
    return any(ns.get("name") == netns for ns in _json([ip, "-j", "netns", "list"]))


def _link(ip: str, name: str, netns: str | None = None) -> dict[str, Any] | None:
    argv = [ip, *(["-n", netns] if netns else []), "-j", "-d", "link", "show", "dev", name]
    proc = _run(argv, check=False)
    if proc.returncode != 0:
        return None
    links = json.loads(proc.stdout or "[]")
    return links[0] if links else None


def _nft_state_file(cfg: EgressConfig, where: str) -> Path:
    return RUN_DIR / f"egress-{cfg.netns}.{where}.nft"


def _ensure_table(nft_argv: list[str], cfg: EgressConfig, body: str, where: str) -> bool:
    """Load ``body`` unless the live table already is exactly what we loaded last time; True if loaded."""
    state = _nft_state_file(cfg, where)
    digest = hashlib.sha256(body.encode()).hexdigest()
    live = _run([*nft_argv, "list", "table", "inet", cfg.table], check=False)
    try:
        recorded = state.read_text()
    except OSError:
        recorded = ""
    if live.returncode == 0 and recorded == f"{digest}\n{normalize_listing(live.stdout)}":
        return False
    _run([*nft_argv, "-f", "-"], input=transaction(cfg.table, body))
    listing = _run([*nft_argv, "list", "table", "inet", cfg.table]).stdout
    _write_if_changed(state, f"{digest}\n{normalize_listing(listing)}", 0o600)
    return True


# -- the API ----------------------------------------------------------------------


def host_resolvers() -> tuple[list[str], str | None]:
    try:
        text = Path("/etc/resolv.conf").read_text()
    except OSError:
        text = ""
    try:
        systemd: str | None = Path("/run/systemd/resolve/resolv.conf").read_text()
    except OSError:
        systemd = None
    return select_resolvers(text, systemd)


def _build_netns(ip: str, cfg: EgressConfig) -> None:
    """Create or repair the namespace, the veth pair, addresses, routes and IPv6 switches (each step idempotent)."""
    if not _netns_exists(ip, cfg.netns):
        _run([ip, "netns", "add", cfg.netns])
    host_link = _link(ip, cfg.host_if)
    ns_link = _link(ip, cfg.ns_if, cfg.netns)
    if host_link is not None and (ns_link is None or (host_link.get("linkinfo") or {}).get("info_kind") != "veth"):
        # The kernel removes the peer of a deleted namespace's veth asynchronously: it may be gone by now.
        gone = _run([ip, "link", "del", cfg.host_if], check=False)
        if gone.returncode != 0 and "Cannot find device" not in gone.stderr:
            raise HostError(f"egress setup: ip link del {cfg.host_if} failed: {gone.stderr.strip()}")
        host_link = None
    if ns_link is not None and host_link is None:
        _run([ip, "-n", cfg.netns, "link", "del", cfg.ns_if])
    if host_link is None:
        _run([ip, "link", "add", cfg.host_if, "type", "veth", "peer", "name", cfg.ns_if, "netns", cfg.netns])
    # No IPv6 inside, nor on the host end (no link-local address for guests to talk to).
    _run([ip, "netns", "exec", cfg.netns, "sh", "-c",
          "for f in /proc/sys/net/ipv6/conf/*/disable_ipv6; do [ ! -e \"$f\" ] || echo 1 > \"$f\"; done"])
    v6 = Path(f"/proc/sys/net/ipv6/conf/{cfg.host_if}/disable_ipv6")
    if v6.exists():
        _write_sysctl(str(v6), "1")
    _run([ip, "addr", "replace", f"{cfg.host_addr}/{cfg.prefixlen}", "dev", cfg.host_if])
    _run([ip, "link", "set", cfg.host_if, "up"])
    _run([ip, "-n", cfg.netns, "addr", "replace", f"{cfg.ns_addr}/{cfg.prefixlen}", "dev", cfg.ns_if])
    _run([ip, "-n", cfg.netns, "link", "set", cfg.ns_if, "up"])
    # Up, so that 127.0.0.1 is local (refused by the namespace's table) rather than routed to the host.
    _run([ip, "-n", cfg.netns, "link", "set", "lo", "up"])
    _run([ip, "-n", cfg.netns, "route", "replace", "default", "via", cfg.host_addr, "dev", cfg.ns_if])
    log.info("egress namespace configured", extra={"action": "egress_netns", "netns": cfg.netns})


def ensure_egress(config: EgressConfig = DEFAULT_CONFIG, *, protect: bool = True) -> EgressNetwork:
    """Create or repair the egress network; returns it ready for ``ip netns exec``.

    Idempotent and safe to call concurrently from several processes (a file lock under
    /run/ember serialises them). Raises HostError when not root or when ``ip``/``nft``
    is missing.

    ``protect=False`` is for tests only: it installs the same network *without* any
    refusal (no reject rules on the host, none in the namespace), so a test can show
    the attacks it checks really succeed when unprotected. Never use it for VMs.
    """
    ip, nft = _tools()
    cfg = config
    with _locked(cfg):
        host_links = _json([ip, "-j", "addr", "show"])
        for link in host_links:  # the subnet must be ours alone
            for a in link.get("addr_info", []):
                if (link.get("ifname") != cfg.host_if and a.get("family") == "inet"
                        and ipaddress.ip_address(a["local"]) in cfg.network):
                    raise HostError(f"egress subnet {cfg.subnet} is already used by {link.get('ifname')} "
                                    f"({a['local']}): pick another EgressConfig.subnet")
        probe = _run([ip, "-n", cfg.netns, "-j", "addr", "show"], check=False)
        ns_links = json.loads(probe.stdout or "[]") if probe.returncode == 0 else None
        ns_routes = _json([ip, "-n", cfg.netns, "-j", "-4", "route", "show", "default"]) if ns_links is not None else []
        if not netns_ready(cfg, host_links, ns_links, ns_routes):
            _build_netns(ip, cfg)
        _write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")

        resolvers, warning = host_resolvers()
        if warning:
            log.warning("egress: %s", warning, extra={"action": "egress_dns"})
        _write_if_changed(NETNS_ETC / cfg.netns / "resolv.conf", render_resolv_conf(resolvers))

        connected = connected_networks(host_links, {cfg.host_if})
        changed = _ensure_table([nft], cfg, render_host_rules(cfg, resolvers, connected, protect), "host")
        changed |= _ensure_table([ip, "netns", "exec", cfg.netns, nft], cfg, render_netns_rules(cfg, protect),
                                 "netns")
        if changed:
            log.info("egress rules loaded", extra={"action": "egress_rules", "netns": cfg.netns,
                                                   "protect": protect, "resolvers": resolvers})
    return EgressNetwork(netns=cfg.netns, config=cfg, resolvers=tuple(resolvers), protected=protect)


def _counters(nft_argv: list[str], table: str) -> dict[str, dict[str, int]]:
    proc = _run([*nft_argv, "-j", "list", "counters", "table", "inet", table], check=False)
    if proc.returncode != 0:
        return {}
    out = {}
    for item in json.loads(proc.stdout).get("nftables", []):
        c = item.get("counter")
        if c and c.get("table") == table:
            out[c["name"]] = {"packets": int(c.get("packets", 0)), "bytes": int(c.get("bytes", 0))}
    return out


def egress_status(config: EgressConfig = DEFAULT_CONFIG) -> dict[str, Any]:
    """Diagnostics: whether the network exists, its resolvers and every refusal counter."""
    ip, nft = _tools()
    cfg = config
    exists = _netns_exists(ip, cfg.netns)
    try:
        resolv = (NETNS_ETC / cfg.netns / "resolv.conf").read_text()
    except OSError:
        resolv = ""
    return {
        "netns": cfg.netns,
        "netns_exists": exists,
        "host_link": _link(ip, cfg.host_if) is not None,
        "resolvers": parse_resolv_conf(resolv),
        "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "1",
        "counters": _counters([nft], cfg.table),
        "netns_counters": _counters([ip, "netns", "exec", cfg.netns, nft], cfg.table) if exists else {},
    }


def teardown_egress(config: EgressConfig = DEFAULT_CONFIG) -> None:
    """Remove the namespace (and with it the veth pair), the host table and the files (tests; idempotent).

    ``net.ipv4.ip_forward`` stays on. VMMs still inside the namespace keep it alive until they exit.
    """
    ip, nft = _tools()
    cfg = config
    with _locked(cfg):
        if _netns_exists(ip, cfg.netns):
            _run([ip, "netns", "del", cfg.netns])
        if _link(ip, cfg.host_if) is not None:
            _run([ip, "link", "del", cfg.host_if], check=False)
        _run([nft, "delete", "table", "inet", cfg.table], check=False)
        shutil.rmtree(NETNS_ETC / cfg.netns, ignore_errors=True)
        for where in ("host", "netns"):
            _nft_state_file(cfg, where).unlink(missing_ok=True)
        (RUN_DIR / f"egress-{cfg.netns}.lock").unlink(missing_ok=True)


async def machine_network(egress: bool) -> dict[str, Any]:
    """The ``MachineSpec`` fields for a VM with or without egress (ensures the egress network first)."""
    if not egress:
        return {"network": "none", "netns": None}
    net = await asyncio.to_thread(ensure_egress)
    return {"network": "user", "netns": net.netns}
