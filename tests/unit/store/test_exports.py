"""The store's public surface is its ``__all__``; it imports only the contract, errors and settings of Ember."""

from __future__ import annotations

import ast
import pathlib

import ember.store as store

ALLOWED = ("ember.store", "ember.contract", "ember.errors", "ember.settings")


def test_all_names_exist() -> None:
    assert len(set(store.__all__)) == len(store.__all__)
    for name in store.__all__:
        assert hasattr(store, name), name


def test_store_imports_only_lower_layers() -> None:
    root = pathlib.Path(store.__file__).parent
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            modules = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for module in modules:
                if module.split(".")[0] == "ember":
                    assert module.startswith(ALLOWED), f"{path.relative_to(root)} imports {module}"
