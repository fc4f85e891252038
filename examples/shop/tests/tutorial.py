"""The tutorial page (``docs/tutorial.md``) as data: its blocks, its commands, and a
matcher for the output it shows.

Documented output matches actual output line by line; ``…`` in a line stands for any
text. A JSON body may be wrapped over several lines: its lines are joined (leading
spaces dropped) before matching.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent  # examples/shop
ROOT = EXAMPLE.parent.parent  # the repository
PAGE = ROOT / "docs" / "tutorial.md"
SNIPPET = re.compile(r'^--8<-- "([^"]+)"$')
ELLIPSIS = "…"


@dataclass
class Block:
    lang: str
    body: str
    line: int  # of the opening fence


@dataclass
class Step:
    command: str
    output: list[str]
    where: str  # page:line, for messages


def blocks(page: Path = PAGE) -> list[Block]:
    found: list[Block] = []
    lines = page.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = re.match(r"^(`{3,})(\S*)\s*$", lines[i])
        if not opening:
            i += 1
            continue
        fence, lang, start = opening.group(1), opening.group(2), i
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].rstrip() != fence:
            body.append(lines[i])
            i += 1
        assert i < len(lines), f"{page.name}:{start + 1}: unclosed code fence"
        found.append(Block(lang, "\n".join(body), start + 1))
        i += 1
    return found


def snippet_paths(page: Path = PAGE) -> list[str]:
    """The files the page's python blocks include, in page order."""
    paths = []
    for block in blocks(page):
        if block.lang == "python":
            match = SNIPPET.match(block.body.strip())
            assert match, f"{page.name}:{block.line}: a python block holds one '--8<-- \"path\"' line"
            paths.append(match.group(1))
    return paths


def steps(block: Block) -> list[Step]:
    """``$ command`` lines (continued by a trailing backslash) and the output below each."""
    lines = block.body.splitlines()
    found: list[Step] = []
    i = 0
    while i < len(lines):
        assert lines[i].startswith("$ "), f"{PAGE.name}:{block.line + 1 + i}: output without a command"
        start, command = i, lines[i][2:]
        i += 1
        while command.endswith("\\"):
            command = command[:-1].rstrip() + " " + lines[i].strip()
            i += 1
        output = []
        while i < len(lines) and not lines[i].startswith("$ "):
            output.append(lines[i])
            i += 1
        found.append(Step(command, output, f"{PAGE.name}:{block.line + 1 + start}"))
    return found


def console_steps(page: Path = PAGE) -> list[Step]:
    return [step for block in blocks(page) if block.lang == "console" for step in steps(block)]


def glob(documented: str) -> re.Pattern[str]:
    return re.compile(".*?".join(re.escape(part) for part in documented.split(ELLIPSIS)), re.S)


def match_lines(documented: list[str], actual: list[str], where: str) -> None:
    """Line by line; a documented line that is only ``…`` stands for any number of lines."""
    pattern = "\n".join(".*?" if line == ELLIPSIS else glob(line).pattern for line in documented)
    text = "\n".join(actual)
    assert re.fullmatch(pattern, text, re.S), (
        f"{where}: the page shows\n" + "\n".join(documented) + "\nbut the command printed\n" + text
    )


def match_body(documented: list[str], actual: str, where: str) -> None:
    """A response body, possibly wrapped over several documented lines."""
    expected = "".join(line.strip() for line in documented)
    assert glob(expected).fullmatch(actual), f"{where}: the page shows\n{expected}\nbut the server answered\n{actual}"


def split(command: str, env: dict[str, str], where: str) -> list[str]:
    """The command's words, with ``$NAME`` replaced by variables set earlier on the page."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in env, f"{where}: ${name} is not set earlier on the page"
        return env[name]

    return shlex.split(re.sub(r"\$\{(\w+)\}|\$([A-Z_][A-Z0-9_]*)", value, command))
