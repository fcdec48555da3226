"""The CLI's parameter types: durations, sizes, KEY=VALUE and hook lists, with messages showing the form."""

from __future__ import annotations

import click
import pytest

from ember.cli.types import DURATION, HOOKS, KEY_VALUE, SIZE, format_duration, parse_duration, parse_size_mib


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400),
                                               ("1h30m", 5400), ("90", 90), (" 8H ", 28800), ("1.5m", 90)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds
    assert DURATION.convert(text, None, None) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m", "5 m", "-5s", "1h 30m", "five"])
def test_bad_durations_show_the_expected_form(text: str) -> None:
    with pytest.raises(click.BadParameter, match="like 30s, 5m, 2h or 1d"):
        DURATION.convert(text, None, None)


@pytest.mark.parametrize(("text", "mib"), [("512M", 512), ("2G", 2048), ("2g", 2048), ("1.5GiB", 1536),
                                           ("1024", 1024), ("262144K", 256), ("512MB", 512), ("1T", 1048576)])
def test_sizes(text: str, mib: int) -> None:
    assert parse_size_mib(text) == mib
    assert SIZE.convert(text, None, None) == mib


@pytest.mark.parametrize("text", ["", "lots", "2X", "-1G", "G"])
def test_bad_sizes_show_the_expected_form(text: str) -> None:
    with pytest.raises(click.BadParameter, match="like 512M or 2G"):
        SIZE.convert(text, None, None)


def test_a_size_must_be_whole_mib() -> None:
    with pytest.raises(click.BadParameter, match="whole number of MiB"):
        SIZE.convert("100K", None, None)


def test_key_value() -> None:
    assert KEY_VALUE.convert("A=1", None, None) == ("A", "1")
    assert KEY_VALUE.convert("URL=http://x?a=b", None, None) == ("URL", "http://x?a=b")
    assert KEY_VALUE.convert("EMPTY=", None, None) == ("EMPTY", "")
    for bad in ("A", "=1", "A B=1"):
        with pytest.raises(click.BadParameter, match="is not KEY=VALUE"):
            KEY_VALUE.convert(bad, None, None)


def test_hooks() -> None:
    assert HOOKS.convert("ready, validate,RUN", None, None) == ["ready", "validate", "run"]
    with pytest.raises(click.BadParameter, match="reboot is not a hook; use a comma-separated list of ready,"):
        HOOKS.convert("ready,reboot", None, None)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (5, 60, 90, 3600, 5400, 90061)] == ["5s", "1m", "1m30s", "1h", "1h30m",
                                                                            "1d1h"]
