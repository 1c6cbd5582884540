"""Every listed command works: each imports, and its `--help` has a description, an example and its exit codes."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from pipelines.cli import COMMANDS, main


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_describes_the_command(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert f"fundguard {command}" in text, "an example naming the command"
    assert re.search(r"exit codes?:", text, re.IGNORECASE), "the exit codes"
    assert re.search(r"\b0\b", text.split("xit code", 1)[1]), "what exit code 0 means"


def test_top_level_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "pipelines.cli", "--help"], capture_output=True, text=True).stdout
    assert all(name in out for name in COMMANDS)


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2
