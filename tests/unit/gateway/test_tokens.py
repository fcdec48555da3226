"""Endpoint tokens: what they grant, every way they are refused, and how minting validates its input."""

from __future__ import annotations

import time

import pytest

from ember.contract.shapes import PortSpecification
from ember.errors import InvalidInput
from ember.gateway.tokens import MAX_TOKEN_CHARS, TOKEN_HEADER, TOKEN_PREFIX, TokenRefused, mint_token, verify_token

SECRET = b"s" * 32
VM = "mvm-" + "a" * 32
ACCT = "111122223333"
NOW = 1_800_000_000.0


def mint(ports=None, minutes=5, kind="proxy", vm=VM, secret=SECRET):  # type: ignore[no-untyped-def]
    return mint_token(secret, vm, ACCT, ports if ports is not None or kind == "shell" else [{"port": 8080}],
                      minutes, kind, now=NOW)[TOKEN_HEADER]


def refused(token: str | None, port: int | None = 8080, kind: str = "proxy", vm: str = VM,
            now: float = NOW + 1) -> TokenRefused:
    with pytest.raises(TokenRefused) as info:
        verify_token(SECRET, token, vm, port, kind, now)  # type: ignore[arg-type]
    return info.value


def test_mint_returns_token_parts_with_one_header() -> None:
    parts = mint_token(SECRET, VM, ACCT, [{"port": 8080}], 15)
    assert list(parts) == [TOKEN_HEADER]
    assert parts[TOKEN_HEADER].startswith(TOKEN_PREFIX)
    assert len(parts[TOKEN_HEADER]) < 300


def test_verified_token_carries_its_claims() -> None:
    claims = verify_token(SECRET, mint([{"port": 8080}, {"range": {"startPort": 9000, "endPort": 9010}}]),
                          VM, 9005, "proxy", NOW + 60)
    assert (claims.microvm_id, claims.account_id, claims.kind) == (VM, ACCT, "proxy")
    assert claims.ports == ((8080, 8080), (9000, 9010))
    assert claims.expires_at == int(NOW) + 300


def test_real_clock_is_the_default() -> None:
    token = mint_token(SECRET, VM, ACCT, [{"port": 1}], 1)[TOKEN_HEADER]
    assert verify_token(SECRET, token, VM, 1, "proxy").expires_at > time.time()


def test_missing_token_is_refused() -> None:
    assert refused(None).code == "token_missing"
    assert refused("").code == "token_missing"


@pytest.mark.parametrize("garbage", ["nonsense", "ember1.", "ember1.a.b.c", "ember2.abc.def", "ember1.é.x",
                                     "ember1." + "a" * MAX_TOKEN_CHARS + ".x", "ember1.!!!.$$$"])
def test_malformed_token_is_refused(garbage: str) -> None:
    assert refused(garbage).code in ("token_malformed", "token_forged")


def test_forged_token_is_refused() -> None:
    token = mint()
    body, sig = token[len(TOKEN_PREFIX):].split(".")
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    assert refused(f"{TOKEN_PREFIX}{body}.{flipped}").code == "token_forged"
    assert refused(mint(secret=b"another secret")).code == "token_forged"


def test_tampered_payload_is_refused() -> None:
    other = mint(vm="mvm-" + "b" * 32)
    mine = mint()
    spliced = other.rsplit(".", 1)[0] + "." + mine.rsplit(".", 1)[1]
    assert refused(spliced).code == "token_forged"


def test_expired_token_is_refused() -> None:
    token = mint(minutes=1)
    verify_token(SECRET, token, VM, 8080, "proxy", NOW + 59)
    assert refused(token, now=NOW + 60).code == "token_expired"


def test_token_for_another_microvm_is_refused() -> None:
    assert refused(mint(), vm="mvm-" + "c" * 32).code == "token_other_microvm"


def test_port_outside_the_scope_is_refused() -> None:
    token = mint([{"port": 8080}, {"range": {"startPort": 3000, "endPort": 3001}}])
    for port in (3000, 3001, 8080):
        verify_token(SECRET, token, VM, port, "proxy", NOW)
    for port in (2999, 3002, 8081):
        assert refused(token, port=port).code == "token_port"


def test_all_ports_covers_every_port() -> None:
    token = mint([{"allPorts": {}}])
    assert verify_token(SECRET, token, VM, 65535, "proxy", NOW).ports == "all"


def test_wrong_kind_is_refused_both_ways() -> None:
    assert refused(mint(), port=None, kind="shell").code == "token_kind"
    assert refused(mint(kind="shell"), kind="proxy").code == "token_kind"
    assert verify_token(SECRET, mint(kind="shell"), VM, None, "shell", NOW).ports == ()


def test_pydantic_port_specifications_are_accepted() -> None:
    specs = [PortSpecification(port=80), PortSpecification.model_validate({"range": {"startPort": 81, "endPort": 90}})]
    assert verify_token(SECRET, mint(specs), VM, 85, "proxy", NOW).ports == ((80, 90),)


def test_overlapping_ranges_are_merged() -> None:
    token = mint([{"range": {"startPort": 10, "endPort": 20}}, {"port": 21},
                  {"range": {"startPort": 15, "endPort": 30}}, {"port": 5}])
    assert verify_token(SECRET, token, VM, 25, "proxy", NOW).ports == ((5, 5), (10, 30))


@pytest.mark.parametrize(("minutes", "fragment"), [(0, "between 1 and 60"), (61, "between 1 and 60"),
                                                   (True, "integer"), ("5", "integer")])
def test_expiry_out_of_bounds_names_field_and_bound(minutes: object, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        mint(minutes=minutes)
    assert info.value.field == "expirationInMinutes"
    assert fragment in str(info.value)


@pytest.mark.parametrize(("ports", "field", "fragment"), [
    ([], "allowedPorts", "at least 1"),
    ([{"port": 0}], "allowedPorts[0].port", "between 1 and 65535"),
    ([{"port": 8080}, {"port": 65536}], "allowedPorts[1].port", "between 1 and 65535"),
    ([{"range": {"startPort": 0, "endPort": 5}}], "allowedPorts[0].range.startPort", "between 1 and 65535"),
    ([{"range": {"startPort": 5}}], "allowedPorts[0].range.endPort", "got None"),
    ([{"range": {"startPort": 9, "endPort": 5}}], "allowedPorts[0].range", "greater than endPort"),
    ([{"port": 1, "allPorts": {}}], "allowedPorts[0]", "exactly one"),
    ([{}], "allowedPorts[0]", "exactly one"),
    ([{"ports": 1}], "allowedPorts[0].ports", "unknown member"),
    (["8080"], "allowedPorts[0]", "must be an object"),
])
def test_bad_port_specifications_name_field_and_bound(ports: list, field: str, fragment: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidInput) as info:
        mint(ports)
    assert info.value.field == field
    assert fragment in str(info.value)


def test_shell_token_takes_no_ports() -> None:
    with pytest.raises(InvalidInput, match="allowedPorts"):
        mint_token(SECRET, VM, ACCT, [{"port": 1}], 5, "shell")


def test_unknown_kind_is_refused_at_mint() -> None:
    with pytest.raises(InvalidInput, match="kind"):
        mint_token(SECRET, VM, ACCT, [{"port": 1}], 5, "admin")  # type: ignore[arg-type]


def test_tokens_are_unique() -> None:
    assert mint() != mint()
