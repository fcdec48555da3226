"""Which VM a request is for, what path the app sees, and the paths the gateway refuses."""

from __future__ import annotations

import pytest

from ember.gateway.responses import Refusal
from ember.gateway.routing import check_path, endpoint_for, is_hook_path, resolve

VM = "mvm-" + "0" * 31 + "1"


@pytest.mark.parametrize(("target", "app_target"), [
    (f"/microvms/{VM}", "/"),
    (f"/microvms/{VM}/", "/"),
    (f"/microvms/{VM}?a=1", "/?a=1"),
    (f"/microvms/{VM}/api/x?y=/z", "/api/x?y=/z"),
])
def test_path_prefix_is_stripped(target: str, app_target: str) -> None:
    route = resolve("127.0.0.1:9443", target, None)
    assert (route.microvm_id, route.target, route.prefix) == (VM, app_target, f"/microvms/{VM}")


def test_host_routing_keeps_the_path() -> None:
    route = resolve(f"{VM}.GW.test:9443", "/microvms/other/x", "gw.test")
    assert (route.microvm_id, route.target, route.prefix) == (VM, "/microvms/other/x", "")


def test_host_outside_the_domain_falls_back_to_the_path() -> None:
    assert resolve("gw.test", f"/microvms/{VM}/a", "gw.test").microvm_id == VM
    assert resolve("[::1]:9443", f"/microvms/{VM}/a", "gw.test").microvm_id == VM
    with pytest.raises(Refusal) as info:
        resolve("a.b.gw.test", "/x", "gw.test")
    assert info.value.status == 404


@pytest.mark.parametrize("target", ["/", "/micro", "/microvms/", "/microvms/BAD_ID/x", "/microvms/../x"])
def test_no_vm_named_is_404(target: str) -> None:
    with pytest.raises(Refusal) as info:
        resolve("localhost", target, None)
    assert info.value.status == 404


@pytest.mark.parametrize("target", ["*", "http://evil/x"])
def test_non_origin_targets_are_400(target: str) -> None:
    with pytest.raises(Refusal) as info:
        resolve("localhost", target, None)
    assert info.value.status == 400


@pytest.mark.parametrize("path", ["/a/../b", "/..", "/a/./b", "/%2e%2e/x", "/%2E%2e", "/a%2f..%2fb", "/%252e%252e/x",
                                  "/a\\..\\b", "/..;/x", "/a/%2e"])
def test_dot_segments_are_refused_however_encoded(path: str) -> None:
    with pytest.raises(Refusal) as info:
        check_path(path)
    assert (info.value.status, info.value.code) == (400, "path_traversal")


def test_nul_is_refused() -> None:
    with pytest.raises(Refusal):
        check_path("/a%00b")


@pytest.mark.parametrize("path", ["/a..b", "/...", "/.well-known/x", "/a/b.", "/%41"])
def test_dots_inside_names_are_fine(path: str) -> None:
    check_path(path)


@pytest.mark.parametrize("path", ["/aws/lambda-microvms/runtime/v1/run", "/aws/lambda-microvms/runtime",
                                  "//aws//lambda-microvms/runtime/v1/suspend", "/AWS/Lambda-MicroVMs/Runtime/v1/x",
                                  "\\aws\\lambda-microvms\\runtime\\v1", "/aws;x/lambda-microvms/runtime/v1/ready"])
def test_hook_paths_are_recognised(path: str) -> None:
    assert is_hook_path(path)


@pytest.mark.parametrize("path", ["/aws/lambda-microvms/other", "/api/aws/lambda-microvms/runtime/v1", "/"])
def test_other_paths_are_not_hook_paths(path: str) -> None:
    assert not is_hook_path(path)


def test_endpoint_formats() -> None:
    assert endpoint_for(VM, "127.0.0.1", 9443) == f"127.0.0.1:9443/microvms/{VM}"
    assert endpoint_for(VM, "127.0.0.1", 9443, "gw.test.") == f"{VM}.gw.test:9443"
