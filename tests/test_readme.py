"""The README's command examples name real commands and options, and its Python snippets parse."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import click
import pytest

from queuekit.cli import main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def documented_commands() -> list[list[str]]:
    """Every `queuekit ...` command in the README's shell blocks, as argument lists."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            line = line.split("#", 1)[0]
            for command in line.split(";"):
                words = shlex.split(command)
                if words and words[0] == "queuekit":
                    commands.append(words[1:])
    return commands


def resolve(words: list[str]) -> tuple[click.Command, list[str]]:
    """Walk the command groups; return the command and the words left for it."""
    command: click.Command = main
    while isinstance(command, click.Group) and words and words[0] in command.commands:
        command, words = command.commands[words[0]], words[1:]
    return command, words


COMMANDS = documented_commands()


def test_the_readme_shows_every_command() -> None:
    names = {resolve(words)[0].name for words in COMMANDS}
    assert names >= {
        "worker",
        "enqueue",
        "stats",
        "migrate",
        "serve",
        "list",
        "show",
        "replay",
        "cancel",
        "delete",
        "purge",
        "pause",
        "resume",
    }


@pytest.mark.parametrize("words", COMMANDS, ids=[" ".join(words) for words in COMMANDS])
def test_each_documented_command_and_option_exists(words: list[str]) -> None:
    command, rest = resolve(words)
    assert not isinstance(command, click.Group), f"{' '.join(words)} names no command"
    options = {name for param in command.params for name in getattr(param, "opts", [])}
    for word in rest:
        if word.startswith("--"):
            assert word.split("=", 1)[0] in options, f"{word} is not an option of {command.name}"


def test_python_snippets_parse() -> None:
    snippets = re.findall(r"```python\n(.*?)```", README, re.S)
    assert snippets
    for snippet in snippets:
        # Top-level `await` parses: the README shows code from inside async functions.
        ast.parse(snippet, feature_version=(3, 11))
