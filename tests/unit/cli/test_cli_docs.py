"""docs/cli.md's command reference is the CLI's own --help output, regenerated and checked like Datasette's cog blocks.

Regenerate after changing a command: ``.venv/bin/python -m tests.unit.cli.test_cli_docs``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from click.testing import CliRunner

from ember.cli.main import main

DOC = Path(__file__).resolve().parents[3] / "docs" / "cli.md"
BEGIN = "<!-- reference: generated from --help by tests/unit/cli/test_cli_docs.py; do not edit below -->"
END = "<!-- end of reference -->"
COMMANDS = [["serve"], ["credentials"], ["ca"], ["image", "build"], ["image", "ls"], ["image", "get"],
            ["image", "versions"], ["image", "builds"], ["image", "logs"], ["image", "rm"], ["run"], ["ls"], ["get"],
            ["suspend"], ["resume"], ["terminate"], ["token"], ["call"], ["logs"], ["shell"], ["top"]]
WIDTH = 100


def help_text(args: list[str]) -> str:
    result = CliRunner().invoke(main, [*args, "--help"], prog_name="ember", terminal_width=WIDTH)
    assert result.exit_code == 0, result.output
    return result.output.rstrip() + "\n"


def reference() -> str:
    parts = [BEGIN, ""]
    for args in COMMANDS:
        parts += [f"### ember {' '.join(args)}", "", "```text", help_text(args).rstrip(), "```", ""]
    parts.append(END)
    return "\n".join(parts) + "\n"


def current() -> str:
    text = DOC.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[start:end] + "\n"


def test_reference_matches_the_help_output() -> None:
    assert current() == reference(), "docs/cli.md is stale: run .venv/bin/python -m tests.unit.cli.test_cli_docs"


def test_every_command_is_in_the_reference() -> None:
    from ember.cli.main import COMMANDS as REGISTERED

    documented = {args[0] for args in COMMANDS}
    assert set(REGISTERED) - {"setup", "demo"} <= documented


def test_exit_codes_and_environment_variables_are_documented() -> None:
    from ember.cli._common import ExitCode

    text = DOC.read_text()
    for code in ExitCode:
        assert f"| {code.value} |" in text, code
    for name in ("EMBER_ENDPOINT", "EMBER_REGION", "EMBER_HOME", "EMBER_CA_BUNDLE", "EMBER_GATEWAY_SCHEME",
                 "AWS_ACCESS_KEY_ID", "EMBER_ROOT_ACCESS_KEY_ID"):
        assert name in text, name


if __name__ == "__main__":
    text = DOC.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    DOC.write_text(text[:start] + reference().rstrip("\n") + text[end:])
    print(f"wrote {DOC}", file=sys.stderr)
