"""Every command's --help renders, teaches (a summary, an Example), and bad input is one line without a traceback."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ember.cli.main import COMMANDS, main

MINE = ["serve", "credentials", "ca", "image", "run", "ls", "get", "suspend", "resume", "terminate", "token", "call",
        "logs", "shell", "top"]
IMAGE_SUBCOMMANDS = ["build", "ls", "get", "versions", "builds", "logs", "rm"]
ALL = [[name] for name in MINE] + [["image", sub] for sub in IMAGE_SUBCOMMANDS]


def test_every_command_is_registered_and_listed() -> None:
    assert set(MINE) <= set(COMMANDS)
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in MINE:
        assert f"  {name} " in result.output, name
    assert "..." not in "".join(line for line in result.output.splitlines() if any(f"  {n} " in line for n in MINE))


@pytest.mark.parametrize("args", ALL, ids=" ".join)
def test_help_renders_with_an_example(args: list[str]) -> None:
    result = CliRunner().invoke(main, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output and "$ ember " in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args", [a for a in ALL if a not in (["image"], ["serve"], ["credentials"], ["ca"])],
                         ids=" ".join)
def test_api_commands_take_endpoint_and_region(args: list[str]) -> None:
    output = CliRunner().invoke(main, [*args, "--help"]).output
    assert "--endpoint URL" in output and "EMBER_ENDPOINT" in output and "--region" in output


@pytest.mark.parametrize(("args", "expected"), [
    (["run", "ci", "--idle", "5x"], "'5x' is not a duration: use a number and a unit, like 30s, 5m, 2h or 1d"),
    (["image", "build", ".", "--name", "ci", "--memory", "lots"], "'lots' is not a size"),
    (["image", "build", ".", "--name", "ci", "--env", "NOEQUALS"], "'NOEQUALS' is not KEY=VALUE"),
    (["image", "build", ".", "--name", "ci", "--hooks", "ready,reboot"], "reboot is not a hook"),
    (["image", "build", "/no/such/dir", "--name", "ci"], "does not exist"),
    (["token", "mvm-1", "--minutes", "90"], "90 is not in the range 1<=x<=60"),
    (["run", "ci", "--suspended-for", "1h"], "--suspended-for and --no-auto-resume need --idle"),
    (["suspend"], "Missing argument 'ID...'"),
])
def test_bad_arguments_are_usage_errors_that_show_the_expected_form(args: list[str], expected: str) -> None:
    env = {"EMBER_ENDPOINT": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "B"}
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output


def test_unreachable_api_is_one_red_line_and_exit_1() -> None:
    env = {"EMBER_ENDPOINT": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "B"}
    result = CliRunner().invoke(main, ["ls"], env=env)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach the Ember API at http://127.0.0.1:9")


def test_a_bad_endpoint_is_one_line() -> None:
    result = CliRunner().invoke(main, ["ls", "--endpoint", "localhost:9180"],
                                env={"AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "B"})
    assert result.exit_code == 1
    assert result.output.strip() == "error: endpoint 'localhost:9180' is not a URL like http://127.0.0.1:9180"


def test_help_does_not_import_the_sdk_stack() -> None:
    """`ember --help` and usage errors stay fast: no httpx, botocore or pydantic models are loaded for them."""
    import subprocess
    import sys

    code = ("import sys; from click.testing import CliRunner; from ember.cli.main import main; "
            "CliRunner().invoke(main, ['--help']); CliRunner().invoke(main, ['run', '--help']); "
            "print(sorted(m for m in ('httpx', 'botocore', 'ember.contract', 'ember.api') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
