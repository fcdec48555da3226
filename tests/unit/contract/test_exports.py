"""The package's public surface is exactly its ``__all__``, and it imports nothing else from Ember."""

from __future__ import annotations

import ast
import pathlib

import ember.contract as contract

PACKAGE_DIR = pathlib.Path(contract.__file__).parent


def test_all_names_exist_and_are_sorted_without_duplicates() -> None:
    assert len(set(contract.__all__)) == len(contract.__all__)
    for name in contract.__all__:
        assert hasattr(contract, name), name


def test_every_public_model_is_exported() -> None:
    from pydantic import BaseModel

    public = {
        name
        for module in ("images", "microvms", "shapes", "tags", "errors", "enums")
        for name, value in vars(getattr(contract, module)).items()
        if not name.startswith("_")
        and isinstance(value, type)
        and value.__module__ == f"ember.contract.{module}"
        and (issubclass(value, BaseModel | Exception) or module == "enums")
    }
    assert public - set(contract.__all__) == set()


def test_contract_imports_nothing_else_from_ember() -> None:
    for path in PACKAGE_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ember"):
                assert node.module.startswith("ember.contract"), f"{path.name} imports {node.module}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("ember") or alias.name.startswith("ember.contract"), path.name
