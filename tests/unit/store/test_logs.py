"""Log lines: numbered per owner, read back after a cursor, bounded reads."""

from __future__ import annotations

from ember.store import Store, logs
from tests.unit.store.conftest import T0, later


def test_append_and_read_since(store: Store) -> None:
    with store.write() as session:
        assert logs.append_logs(session, logs.OWNER_MICROVM, "mvm-1", ["a", "b"], at=T0) == 2
        assert (
            logs.append_logs(session, logs.OWNER_MICROVM, "mvm-1", ["c"], stream=logs.STREAM_STDERR, at=later(1)) == 3
        )
        assert logs.append_logs(session, logs.OWNER_BUILD, "b1", ["build"]) == 1
        assert logs.append_logs(session, logs.OWNER_BUILD, "b1", []) == 1
    with store.read() as session:
        everything = logs.read_logs(session, logs.OWNER_MICROVM, "mvm-1")
        assert [(line.seq, line.stream, line.line) for line in everything] == [
            (1, "stdout", "a"),
            (2, "stdout", "b"),
            (3, "stderr", "c"),
        ]
        assert [line.line for line in logs.read_logs(session, logs.OWNER_MICROVM, "mvm-1", after_seq=2)] == ["c"]
        assert [line.line for line in logs.read_logs(session, logs.OWNER_MICROVM, "mvm-1", since=later(1))] == ["c"]
        assert [line.line for line in logs.read_logs(session, logs.OWNER_MICROVM, "mvm-1", limit=1)] == ["a"]
        assert [line.line for line in logs.read_logs(session, logs.OWNER_BUILD, "b1")] == ["build"]
    with store.write() as session:
        logs.delete_logs(session, logs.OWNER_MICROVM, "mvm-1")
        assert logs.read_logs(session, logs.OWNER_MICROVM, "mvm-1") == []
