"""The README as a user copies it: every `trustgate` command line names commands and options that
exist, every `trustgate.yaml` snippet matches the config schema, and every file it links exists.

What a command does is tested where the command is; here only what a copy-paste would trip on
first: a renamed flag, a moved key, a deleted file.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import click
import jsonschema
import pytest
import yaml

from trustgate.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SCHEMA = json.loads((ROOT / "trustgate" / "schemas" / "config-v1alpha1.json").read_text())


def _blocks() -> list[tuple[int, str, str]]:
    """(line of the opening fence, language, body) of every fenced code block."""
    blocks: list[tuple[int, str, str]] = []
    lines = README.read_text().splitlines()
    start, language, body = 0, "", list[str]()
    inside = False
    for number, line in enumerate(lines, 1):
        if line.startswith("```"):
            if inside:
                blocks.append((start, language, "\n".join(body)))
            else:
                start, language, body = number, line[3:].strip(), []
            inside = not inside
        elif inside:
            body.append(line)
    return blocks


def _command_lines() -> list[tuple[int, str]]:
    """`trustgate ...` as run in a shell block (continuations joined) or quoted in the text."""
    found: list[tuple[int, str]] = []
    for start, language, body in _blocks():
        if language not in ("sh", "yaml"):  # yaml: a workflow's `- run: trustgate ...`
            continue
        for offset, line in enumerate(body.replace("\\\n", " ").splitlines(), 1):
            command = line.strip().removeprefix("- run:").strip()
            if command.startswith("trustgate ") or command.startswith(".venv/bin/trustgate "):
                found.append((start + offset, command))
            elif language == "sh" and "| trustgate " in command:
                found.append((start + offset, command[command.index("| trustgate ") + 2 :]))
    in_text = re.compile(r"`((?:\.venv/bin/)?trustgate [^`]+)`")
    inside = False
    for number, line in enumerate(README.read_text().splitlines(), 1):
        if line.startswith("```"):
            inside = not inside
        elif not inside:
            found += [(number, m.group(1)) for m in in_text.finditer(line)]
    return found


def _options(command: click.Command) -> dict[str, click.Option | None]:
    names: dict[str, click.Option | None] = {"--help": None, "-h": None}
    for param in command.params:
        if isinstance(param, click.Option):
            names.update(dict.fromkeys([*param.opts, *param.secondary_opts], param))
    return names


def _problems(command_line: str) -> list[str]:
    """Unknown commands and options in one command line; placeholders (`...`, `[--x]`) are skipped."""
    text = re.split(r"\s+#\s", command_line)[0]
    text = re.split(r"\s[|>]\s", text)[0]
    text = re.sub(r"\[[^\]]*\]", " ", text)  # optional parts are shown as [--format json|sarif]
    words = shlex.split(text)[1:]
    command: click.Command = main
    context = click.Context(main)
    path = ["trustgate"]
    problems: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if isinstance(command, click.Group) and not word.startswith("-"):
            if word == "...":
                break
            sub = command.get_command(context, word)
            if sub is None:
                return [f"{' '.join(path)} has no command {word!r}"]
            command, index = sub, index + 1
            path.append(word)
            continue
        if word.startswith("-") and word != "-":
            name = word.split("=", 1)[0]
            options = _options(command)
            if name not in options:
                problems.append(f"{' '.join(path)} has no option {name}")
            elif (option := options[name]) is not None and not option.is_flag and "=" not in word:
                index += 1  # its value
        index += 1
    return problems


COMMANDS = _command_lines()


def test_the_readme_quotes_commands_of_every_kind() -> None:
    # The extraction itself: a change of the README's layout must not leave this test checking nothing.
    assert len(COMMANDS) > 60
    assert {"check", "log", "serve", "webhook-config", "ui", "presync", "verify"} <= {
        line.split()[1] for _, line in COMMANDS if not line.startswith(".venv")
    }


@pytest.mark.parametrize(("line", "command"), COMMANDS, ids=[f"README:{n}" for n, _ in COMMANDS])
def test_every_command_line_names_commands_and_options_that_exist(line: int, command: str) -> None:
    assert _problems(command) == [], f"README.md:{line}: {command}"


def test_an_unknown_option_or_command_is_found() -> None:
    assert _problems("trustgate check --no-such-flag deploy/") == [
        "trustgate check has no option --no-such-flag"
    ]
    assert _problems("trustgate log querry --store URL") == ["trustgate log has no command 'querry'"]
    assert _problems("trustgate log query --store URL --image x  # also --nope") == []


def _config_snippets() -> list[tuple[int, dict[str, object]]]:
    """The YAML blocks that are a trustgate.yaml or a part of one (only its top-level sections)."""
    sections = set(SCHEMA["properties"]) - {"apiVersion", "kind"}
    snippets: list[tuple[int, dict[str, object]]] = []
    for start, language, body in _blocks():
        if language != "yaml" or "[...]" in body:  # `rules: [...]  # as above` stands for a list
            continue
        try:
            documents = list(yaml.safe_load_all(body))
        except yaml.YAMLError:
            continue  # two files side by side, as a picture
        for document in documents:
            if not isinstance(document, dict) or document.get("kind", "Config") != "Config":
                continue
            if document.get("apiVersion", "trustgate.dev/v1alpha1") != "trustgate.dev/v1alpha1":
                continue
            keys = set(document) - {"apiVersion", "kind"}
            if keys and keys <= sections:
                snippets.append(
                    (start, {"apiVersion": "trustgate.dev/v1alpha1", "kind": "Config", **document})
                )
    return snippets


SNIPPETS = _config_snippets()


def test_the_readme_has_config_snippets_for_every_section_it_documents() -> None:
    seen = {key for _, snippet in SNIPPETS for key in snippet}
    assert {"manifests", "images", "decisionLog", "admission", "commits", "presync", "workloads"} <= seen


@pytest.mark.parametrize(("line", "snippet"), SNIPPETS, ids=[f"README:{n}" for n, _ in SNIPPETS])
def test_every_config_snippet_matches_the_schema(line: int, snippet: dict[str, object]) -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    problems = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(snippet)]
    assert problems == [], f"README.md:{line}"


# Paths the README names that are not this repository's: sigstore-conformance's protocol document and
# the gated branch `trustgate/verified`.
NOT_OURS = {"docs/cli_protocol.md", "trustgate/verified"}


def test_every_linked_file_and_named_repository_path_exists() -> None:
    text = README.read_text()
    links = [m.group(1) for m in re.finditer(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)]
    paths = re.findall(
        r"`((?:docs|webhook|deploy|policies|scripts|bench|tests|trustgate|requirements)/[^`\s*<]*)`", text
    )
    named = [p for p in links if not re.match(r"[a-z]+:", p)] + paths
    assert len(named) > 20
    missing = sorted({p for p in named if not (ROOT / p).exists()} - NOT_OURS)
    assert missing == []


def test_every_section_link_leads_to_a_heading() -> None:
    text = README.read_text()
    anchors = {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.*)$", text, re.MULTILINE)
    }
    linked = set(re.findall(r"\]\(#([^)]+)\)", text))
    assert linked and linked <= anchors, sorted(linked - anchors)


def test_every_make_target_it_names_exists() -> None:
    targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    named = set(re.findall(r"`make ([a-z][\w-]*)", README.read_text()))
    assert {"dev", "test", "bench"} <= named
    assert named <= targets, sorted(named - targets)
