"""Network attacks from inside a guest, and canary listeners on the host that record whether one got through.

Shared by ``tests/vm/test_egress.py`` and ``tests/security/test_guest.py``. The attack scripts run under
the guest's own ``python3`` (the test rootfs has no ``ip`` or ``nc``), as root, as an attacker would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading

from ember.host.agent_client import AgentClient

# Connects to every target at once (threads) and reports, per "host:port", [result, seconds]: "connected",
# "timeout" or the OSError's name and errno. With "http" as the second argument, a connection also sends
# a GET and reports the first line of the answer as a third item. A target with an IPv6 address first
# gives eth0 an address in user-mode NAT's IPv6 network (fec0::/64) and a default route via its gateway
# fec0::2, as root in a guest may.
ATTACK = r"""
import concurrent.futures, fcntl, json, socket, struct, sys, time
TIMEOUT_S = 3
targets = json.loads(sys.argv[1])
http = sys.argv[2:] == ["http"]

def ipv6_address():
    try:
        with open("/proc/sys/net/ipv6/conf/eth0/accept_dad", "w") as f:
            f.write("0")  # usable at once, no duplicate address detection to wait for
    except OSError:
        pass
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    index = socket.if_nametoindex("eth0")
    gateway = socket.inet_pton(socket.AF_INET6, "fec0::2")
    try:
        addr = socket.inet_pton(socket.AF_INET6, "fec0::15")
        fcntl.ioctl(s, 0x8916, struct.pack("16sIi", addr, 64, index))  # SIOCSIFADDR
    except OSError:
        pass
    try:  # SIOCADDRT, struct in6_rtmsg: ::/0 via fec0::2, RTF_UP | RTF_GATEWAY
        fcntl.ioctl(s, 0x890B, struct.pack("16s16s16sIHHI4xQIi", bytes(16), bytes(16), gateway, 0, 0, 0, 1, 0, 3,
                                           index))
    except OSError:
        pass
    s.close()

def one(target):
    host, port = target
    t0 = time.monotonic()
    first = None
    try:
        c = socket.create_connection((host, port), timeout=TIMEOUT_S)
        r = "connected"
        if http:
            try:
                c.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
                first = c.recv(200).split(b"\r\n")[0].decode(errors="replace")
            except OSError as e:
                first = f"{type(e).__name__}"
        c.close()
    except socket.timeout:
        r = "timeout"
    except OSError as e:
        r = f"{type(e).__name__} errno={e.errno}"
    out = [r, round(time.monotonic() - t0, 2)]
    return f"{host}:{port}", out + [first] if http else out

if any(":" in h for h, _ in targets):
    ipv6_address()
with concurrent.futures.ThreadPoolExecutor(max(1, len(targets))) as pool:
    print(json.dumps(dict(pool.map(one, targets))))
"""

_CANARY = r"""
import socket, sys
bind = sys.argv[1]
s = socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if ":" in bind:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind((bind, int(sys.argv[2])))
s.listen(64)
print("port", s.getsockname()[1], flush=True)
while True:
    c, peer = s.accept()
    print("conn", peer[0].removeprefix("::ffff:"), c.getsockname()[0].removeprefix("::ffff:"), flush=True)
    c.close()
"""


class Canary:
    """A TCP listener (on the host, or inside a network namespace) that records every connection.

    ``bind`` "0.0.0.0" listens on every IPv4 address; "::" on every IPv4 and IPv6 address. ``hits`` holds
    (peer address, local address) pairs, IPv4-mapped addresses shown as plain IPv4.
    """

    def __init__(self, netns: str | None = None, bind: str = "0.0.0.0", port: int = 0) -> None:
        prefix = ["ip", "netns", "exec", netns] if netns else []
        self.proc = subprocess.Popen([*prefix, sys.executable, "-c", _CANARY, bind, str(port)],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline().split()
        assert first[:1] == ["port"], first
        self.port = int(first[1])
        self.hits: list[tuple[str, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            parts = line.split()
            if parts[:1] == ["conn"]:
                self.hits.append((parts[1], parts[2]))

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._reader.join(5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def _ip_json(*args: str) -> list[dict[str, object]]:
    return json.loads(subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True).stdout or "[]")


def host_primary_address() -> str:
    """The source address the host uses towards the internet (``ip -4 route get 1.1.1.1``)."""
    return str(_ip_json("-4", "route", "get", "1.1.1.1")[0]["prefsrc"])


def default_gateway() -> str | None:
    routes = _ip_json("-4", "route", "show", "default")
    return str(routes[0]["gateway"]) if routes and "gateway" in routes[0] else None


def host_addresses() -> list[str]:
    """Every address of the host but loopback and link-local: IPv4 and global IPv6."""
    out = []
    for link in _ip_json("addr", "show"):
        for info in link.get("addr_info", []):  # type: ignore[attr-defined]
            addr, scope = str(info["local"]), info.get("scope")
            if scope == "global" and not addr.startswith("127."):
                out.append(addr)
    return out


async def guest_json(agent: AgentClient, script: str, *args: str, timeout: float = 120) -> dict[str, object]:
    """Run a Python script in the guest and parse the JSON it prints."""
    res = await agent.exec(["/usr/bin/python3", "-c", script, *args], timeout=timeout)
    assert res.exit_code == 0, res.stderr.decode()
    return json.loads(res.stdout)


async def attack(agent: AgentClient, targets: list[tuple[str, int]], http: bool = False) -> dict[str, list[object]]:
    """Connect from the guest to each (host, port) at once; {"host:port": [result, seconds(, first line)]}."""
    out = await guest_json(agent, ATTACK, json.dumps(targets), *(["http"] if http else []))
    return out  # type: ignore[return-value]
