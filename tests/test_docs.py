"""The docs site keeps its promises: every example is real, runs, and answers as shown.

* Every ``python`` block of ``docs/*.md`` and README.md is a snippet include of a file
  that exists (README's ``readme-example`` block aside, which tests/test_readme.py runs),
  and every ``docs_src`` module is used by a page (tests/test_docs_examples.py runs them).
* Every ``console`` block is replayed against the demo app, see ``Console`` below.
* ``mkdocs build --strict`` builds the site.
"""

from __future__ import annotations

import contextlib
import http
import io
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from testproject import __main__ as demo_cli
from tests.helpers import auth
from tests.livefeed import feed_client, ready, subscribe

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = [*sorted(DOCS.glob("*.md")), README]
SNIPPET = re.compile(r'^--8<-- "([^"]+)"$')
# examples, the demo's own sources and the example project's (the tutorial) shown as they are
SNIPPET_ROOTS = ("docs_src/", "testproject/", "examples/shop/")


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


# -- fenced blocks -----------------------------------------------------------------------


@dataclass
class Block:
    page: Path
    lang: str
    body: str
    line: int  # of the opening fence
    after_marker: bool  # preceded by <!-- readme-example -->

    def __str__(self) -> str:
        return f"{page_id(self.page)}:{self.line}"


def blocks(page: Path) -> list[Block]:
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
        assert i < len(lines), f"{page_id(page)}:{start + 1}: unclosed code fence"
        marker = any(line.strip() == "<!-- readme-example -->" for line in lines[max(start - 2, 0) : start])
        found.append(Block(page, lang, "\n".join(body), start + 1, marker))
        i += 1
    return found


def all_blocks(lang: str) -> list[Block]:
    return [block for page in PAGES for block in blocks(page) if block.lang == lang]


def snippet_paths() -> set[str]:
    paths = set()
    for page in PAGES:
        for line in page.read_text().splitlines():
            match = SNIPPET.match(line.strip())
            if match:
                paths.add(match.group(1))
    return paths


# -- the rules ---------------------------------------------------------------------------


def test_every_python_block_is_a_snippet_include() -> None:
    offenders = []
    for block in all_blocks("python"):
        if block.page == README and block.after_marker:
            continue  # README's short example: tests/test_readme.py runs it
        if not SNIPPET.match(block.body.strip()):
            offenders.append(str(block))
    assert not offenders, f"python blocks must hold one '--8<-- \"docs_src/...\"' line: {offenders}"


def test_every_snippet_exists_under_an_allowed_root() -> None:
    for path in snippet_paths():
        assert path.startswith(SNIPPET_ROOTS), f"{path}: examples live under docs_src/"
        assert (ROOT / path).is_file(), f"{path} does not exist"


def test_every_docs_src_module_is_used_by_a_page() -> None:
    modules = {str(path.relative_to(ROOT)) for path in (ROOT / "docs_src").rglob("*.py")}
    unused = modules - snippet_paths()
    assert not unused, f"docs_src modules no page includes: {sorted(unused)}"


def test_readme_example_is_the_docs_example() -> None:
    (readme_example,) = [block for block in blocks(README) if block.after_marker]
    assert readme_example.body + "\n" == (ROOT / "docs_src/index/example.py").read_text()


def test_readme_links_every_page_and_names_real_extras() -> None:
    text = README.read_text()
    for page in sorted(DOCS.glob("*.md")):
        assert f"](docs/{page.name})" in text, f"README.md does not link docs/{page.name}"
    extras = set(re.findall(r"pip install -e '\.\[(\w+)\]'", text))
    pyproject = (ROOT / "pyproject.toml").read_text()
    for extra in extras:
        assert re.search(rf"^{extra} = \[", pyproject, re.M), f"README names the extra [{extra}]"


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    try:
        import material  # noqa: F401
        import mkdocs  # noqa: F401
    except ImportError as error:
        if os.environ.get("CI", "").lower() == "true":
            raise
        pytest.skip(f"mkdocs-material is not installed ({error}); pip install -e '.[docs]'")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "writes" / "index.html").is_file()


# -- output patterns: JSON where "…" means "anything here" --------------------------------

ELLIPSIS = "…"
PLACEHOLDER = re.compile(r"([0-9a-f]{4})" + ELLIPSIS)


class _Any:
    def __repr__(self) -> str:
        return ELLIPSIS


ANY = _Any()


@dataclass
class Members:
    members: dict[str, Any]
    more: bool  # ends with "…": other keys may follow


@dataclass
class Items:
    items: list[Any]
    more: bool  # ends with "…": more items may follow


@dataclass
class Text:
    pattern: str  # a string holding "…": a glob, or a placeholder such as "5f0c…"


class PatternParser:
    """JSON plus ``…``: a value (anything), the last member of an object or array (more)."""

    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0
        self.decoder = json.JSONDecoder()

    def parse(self) -> Any:
        value = self.value()
        self.space()
        assert self.pos == len(self.text), f"trailing text in the documented output: {self.text[self.pos :]!r}"
        return value

    def space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self, token: str) -> bool:
        self.space()
        if self.text.startswith(token, self.pos):
            self.pos += len(token)
            return True
        return False

    def value(self) -> Any:
        self.space()
        if self.peek("{"):
            return self.container("}", Members)
        if self.peek("["):
            return self.container("]", Items)
        if self.peek(ELLIPSIS):
            return ANY
        value, self.pos = self.decoder.raw_decode(self.text, self.pos)
        return Text(value) if isinstance(value, str) and ELLIPSIS in value else value

    def container(self, close: str, kind: type[Members] | type[Items]) -> Members | Items:
        members: dict[str, Any] = {}
        items: list[Any] = []
        while not self.peek(close):
            if self.peek(ELLIPSIS):
                assert self.peek(close), f"'…' must end its container: {self.text[self.pos - 10 : self.pos + 10]!r}"
                return kind(members, True) if kind is Members else kind(items, True)  # type: ignore[arg-type]
            if kind is Members:
                key, self.pos = self.decoder.raw_decode(self.text, self.pos)
                assert self.peek(":"), f"':' expected at {self.pos}"
                members[key] = self.value()
            else:
                items.append(self.value())
            self.peek(",")
        return kind(members, False) if kind is Members else kind(items, False)  # type: ignore[arg-type]


@dataclass
class Bindings:
    """Placeholders (``5f0c…``) bound to the values the block met them as."""

    values: dict[str, str] = field(default_factory=dict)

    def match_text(self, pattern: str, actual: str, where: str) -> None:
        regex, groups = "", {}
        for index, part in enumerate(re.split(r"([0-9a-f]{4}…|…)", pattern)):
            if index % 2 == 0:
                regex += re.escape(part)
            elif part == ELLIPSIS:
                regex += ".*?"
            elif part[:4] in self.values:
                regex += re.escape(self.values[part[:4]])
            elif part[:4] in groups.values():
                regex += f"(?P=p{part[:4]})"
            else:
                groups[f"p{part[:4]}"] = part[:4]
                regex += f"(?P<p{part[:4]}>.+?)"
        match = re.fullmatch(regex, actual, re.S)
        assert match, f"{where}: {actual!r} does not match the documented {pattern!r}"
        for group, name in groups.items():
            value = match.group(group)
            others = {other for other, bound in self.values.items() if bound == value}
            assert not others, f"{where}: {name}… is {value!r}, which {others.pop()}… already stands for"
            self.values[name] = value

    def substitute(self, command: str) -> str:
        def bound(match: re.Match[str]) -> str:
            name = match.group(1)
            assert name in self.values, f"{name}… is used before the output that binds it"
            return self.values[name]

        return PLACEHOLDER.sub(bound, command)

    def match(self, pattern: Any, actual: Any, where: str = "$") -> None:
        if pattern is ANY:
            return
        if isinstance(pattern, Members):
            assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
            missing = pattern.members.keys() - actual.keys()
            assert not missing, f"{where}: missing {sorted(missing)} in {actual!r}"
            extra = actual.keys() - pattern.members.keys()
            assert pattern.more or not extra, f"{where}: undocumented keys {sorted(extra)} (end with … to allow)"
            for key, value in pattern.members.items():
                self.match(value, actual[key], f"{where}.{key}")
        elif isinstance(pattern, Items):
            assert isinstance(actual, list), f"{where}: expected a list, got {actual!r}"
            count = len(pattern.items)
            assert len(actual) >= count if pattern.more else len(actual) == count, (
                f"{where}: {len(actual)} items, documented {count}{' or more' if pattern.more else ''}: {actual!r}"
            )
            for index, item in enumerate(pattern.items):
                self.match(item, actual[index], f"{where}[{index}]")
        elif isinstance(pattern, Text):
            assert isinstance(actual, str), f"{where}: expected a string, got {actual!r}"
            self.match_text(pattern.pattern, actual, where)
        else:
            assert type(actual) is type(pattern) and actual == pattern, f"{where}: {actual!r} != {pattern!r}"


def test_patterns_mean_what_the_docs_say() -> None:
    bindings = Bindings()
    pattern = PatternParser('{"id":"5f0c…","n":…,"items":[{"a":1,…},…],"at":"2026-…Z"}').parse()
    bindings.match(pattern, {"id": "abc", "n": 3, "items": [{"a": 1, "b": 2}, {}], "at": "2026-01-01Z"})
    assert bindings.substitute("/companies/5f0c…") == "/companies/abc"
    with pytest.raises(AssertionError, match="undocumented keys"):
        bindings.match(PatternParser('{"a":1}').parse(), {"a": 1, "b": 2})
    with pytest.raises(AssertionError, match="does not match"):
        bindings.match(PatternParser('{"id":"5f0c…"}').parse(), {"id": "other"})
    with pytest.raises(AssertionError, match="already stands for"):
        bindings.match(PatternParser('{"id":"9b3a…"}').parse(), {"id": "abc"})


# -- console blocks ----------------------------------------------------------------------


@dataclass
class Step:
    command: str
    output: list[str]
    line: int


def steps(block: Block) -> list[Step]:
    """``$ command`` lines (continued by a trailing backslash or an open quote) and their output."""
    lines = block.body.splitlines()
    found: list[Step] = []
    i = 0
    while i < len(lines):
        assert lines[i].startswith("$ "), f"{block}: output without a command: {lines[i]!r}"
        command, start = lines[i][2:], i
        i += 1
        while True:
            if command.endswith("\\"):
                command = command[:-1].rstrip() + " " + lines[i].strip()
            elif not _balanced(command):
                command += "\n" + lines[i]
            else:
                break
            i += 1
        output = []
        while i < len(lines) and not lines[i].startswith("$ "):
            output.append(lines[i])
            i += 1
        found.append(Step(command, output, block.line + 1 + start))
    return found


def _balanced(command: str) -> bool:
    try:
        shlex.split(command)
    except ValueError:
        return False
    return True


ASSIGNMENT = re.compile(r"^(?:export\s+)?([A-Z][A-Z0-9_]*)=\$\((.*)\)$", re.S)
VARIABLE = re.compile(r"\$\{?([A-Z][A-Z0-9_]*)\}?")


def _jq_field(program: list[str]) -> str | None:
    """The field of ``jq -r .<field>`` (a top-level one: ``.id``, ``.access_token``), else None."""
    if len(program) == 3 and program[:2] == ["jq", "-r"] and re.fullmatch(r"\.[a-z_]+", program[2]):
        return program[2][1:]
    return None


class Console:
    """Replays a console block against a ``TestClient`` of the demo.

    ``python -m testproject token ...`` runs the demo's own command line in-process (it
    never touches the database or starts a server); other ``python -m testproject``
    lines are only parsed. ``NAME=$(...)`` binds a variable (a token, or a field of a
    ``curl ... | jq -r .id`` answer: ``.id``, ``.access_token``...). ``curl`` takes ``-s -i -X -H -d -o /dev/null``; its
    output may go through ``grep -i`` or ``head -n``. Documented output is compared
    as JSON where ``…`` means anything; with ``-i``, the status line and the headers
    shown must be the response's.
    """

    def __init__(self, client: TestClient | None, where: str) -> None:
        self.client, self.where = client, where
        self.env: dict[str, str] = {}
        self.bindings = Bindings()

    def run(self, step: Step, *, tokens_only: bool = False) -> None:
        where = f"{self.where}, line {step.line}"
        assignment = ASSIGNMENT.match(step.command)
        if assignment:
            name, inner = assignment.groups()
            if tokens_only and not inner.startswith("python"):
                return
            assert not step.output, f"{where}: an assignment prints nothing"
            self.env[name] = self.execute(inner, where, assign=True)[0].strip()
        elif not tokens_only:
            output, kind = self.execute(step.command, where, assign=False)
            if kind == "body":
                self.compare_body(step.output, output, where)
            elif kind == "head":
                self.compare_head(step.output, output.splitlines(), where)
            else:
                self.compare_lines(step.output, output.rstrip("\n").splitlines() if output else [], where)

    def expand(self, command: str, where: str) -> str:
        def value(match: re.Match[str]) -> str:
            assert match.group(1) in self.env, f"{where}: ${match.group(1)} is not set earlier on the page"
            return self.env[match.group(1)]

        return self.bindings.substitute(VARIABLE.sub(value, command))

    def execute(self, command: str, where: str, *, assign: bool) -> tuple[str, str]:
        """The command's output, and how to compare it: as "lines", a JSON "body" or an HTTP "head"."""
        lexer = shlex.shlex(self.expand(command, where), posix=True, punctuation_chars="|")
        lexer.whitespace_split, lexer.commenters = True, ""
        pipeline: list[list[str]] = [[]]
        for word in lexer:
            if word == "|":
                pipeline.append([])
            else:
                pipeline[-1].append(word)
        program, *filters = pipeline
        if program[:3] == ["python", "-m", "testproject"]:
            assert not filters, f"{where}: no pipes after the demo's command line"
            return self.testproject(program[3:], where), "lines"
        assert program[0] == "curl", f"{where}: only curl and 'python -m testproject' lines are replayed"
        if assign:
            assert len(filters) == 1 and _jq_field(filters[0]), f"{where}: bind a curl's answer with '| jq -r .id'"
        output, kind = self.curl(program[1:], where)
        for program_filter in filters:
            output, kind = self.filter(program_filter, output, where), "lines"
        return output, kind

    def testproject(self, argv: list[str], where: str) -> str:
        try:
            args = demo_cli.build_parser().parse_args(argv)
        except SystemExit:
            pytest.fail(f"{where}: 'python -m testproject {' '.join(argv)}' is not a valid invocation")
        if args.handler.__name__ != "_token":
            return ""  # serve, migrate, seed: valid, but not run here
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            assert demo_cli.main(argv) == 0, f"{where}: the token command failed"
        return stdout.getvalue()

    def curl(self, args: list[str], where: str) -> tuple[str, str]:
        method, url, body, include, discard = None, None, None, False, False
        headers: dict[str, str] = {}
        words = iter(args)
        for word in words:
            if word in ("-s", "--silent"):
                continue
            if word in ("-i", "-si", "-is", "--include"):
                include = True
            elif word in ("-X", "--request"):
                method = next(words)
            elif word in ("-H", "--header"):
                name, _, value = next(words).partition(":")
                headers[name.strip()] = value.strip()
            elif word in ("-d", "--data", "--data-raw"):
                body = next(words)
            elif word in ("-o", "--output"):
                assert next(words) == "/dev/null", f"{where}: -o /dev/null only"
                discard = True
            elif word.startswith("http"):
                url = word
            else:
                pytest.fail(f"{where}: curl option {word!r} is not replayed; use -s -i -X -H -d -o")
        assert url is not None, f"{where}: curl without a URL"
        parts = urlsplit(url)
        assert parts.netloc == "127.0.0.1:8000", f"{where}: the demo serves http://127.0.0.1:8000"
        assert self.client is not None
        response = self.client.request(
            method or ("POST" if body is not None else "GET"),
            parts.path + (f"?{parts.query}" if parts.query else ""),
            headers=headers,
            content=body.encode() if body is not None else None,
        )
        assert response.status_code < 500, f"{where}: {response.status_code} {response.text}"
        if discard:
            assert response.is_success, f"{where}: {response.status_code} {response.text}"
            return "", "lines"
        if not include:
            return response.text, "body"
        status = f"HTTP/1.1 {response.status_code} {http.HTTPStatus(response.status_code).phrase}"
        head = [status, *(f"{name}: {value}" for name, value in response.headers.items())]
        return "\n".join([*head, "", response.text]), "head"

    def filter(self, program: list[str], text: str, where: str) -> str:
        lines = text.splitlines()
        if program[:2] == ["grep", "-i"] and len(program) == 3:
            return "\n".join(line for line in lines if re.search(re.escape(program[2]), line, re.I))
        if program[0] == "head" and len(program) in (2, 3):
            return "\n".join(lines[: int(program[-1].lstrip("-"))])
        field = _jq_field(program)
        if field is not None:
            return str(json.loads(text)[field])
        pytest.fail(f"{where}: '{' '.join(program)}' is not replayed (grep -i, head, jq -r .<field>)")

    def compare_lines(self, expected: list[str], actual: list[str], where: str) -> None:
        assert len(actual) == len(expected), f"{where}: {actual!r} was printed, documented {expected!r}"
        for documented, line in zip(expected, actual, strict=True):
            self.bindings.match_text(documented, line, where)

    def compare_body(self, expected: list[str], body: str, where: str) -> None:
        if not body:
            assert not expected, f"{where}: the answer is empty, documented {expected!r}"
            return
        assert expected, f"{where}: the docs show no output, the demo answered {body!r}"
        pattern = PatternParser("".join(line.strip() for line in expected)).parse()
        self.bindings.match(pattern, json.loads(body), where)

    def compare_head(self, expected: list[str], actual: list[str], where: str) -> None:
        """``curl -i``: the status line, the headers shown (a subset), then the body if shown."""
        blank = actual.index("")
        head, body = actual[:blank], "\n".join(actual[blank + 1 :])
        shown = expected.index("") if "" in expected else len(expected)
        assert expected and expected[0] == head[0], f"{where}: {head[0]!r}, documented {expected[:1]!r}"
        for documented in expected[1:shown]:
            name = documented.partition(":")[0].lower()
            lines = [line for line in head[1:] if line.partition(":")[0].lower() == name]
            assert lines, f"{where}: no {name} header in {head!r}"
            self.bindings.match_text(documented, lines[0], where)
        if shown < len(expected):
            self.compare_body(expected[shown + 1 :], body, where)


# docs/tutorial.md builds a project of its own: examples/shop/tests/test_tutorial.py replays it.
CONSOLE_BLOCKS = [block for block in all_blocks("console") if block.page != DOCS / "tutorial.md"]


@pytest.mark.parametrize("block", CONSOLE_BLOCKS, ids=[str(block) for block in CONSOLE_BLOCKS])
def test_console_block_replays_against_the_demo(block: Block, client: TestClient) -> None:
    from testproject.seed import ensure_demo_user

    ensure_demo_user()  # as `python -m testproject` creates it: docs/auth.md logs in as them
    console = Console(client, str(block))
    for earlier in blocks(block.page):  # tokens set earlier on the page carry over
        if earlier.lang == "console" and earlier.line < block.line:
            for step in steps(earlier):
                console.run(step, tokens_only=True)
    for step in steps(block):
        console.run(step)


def test_console_replay_fails_on_a_wrong_answer(client: TestClient) -> None:
    block = Block(README, "console", '$ curl -s http://127.0.0.1:8000/companies\n{"detail":{"code":"x",…}}', 1, False)
    with pytest.raises(AssertionError, match=r"detail\.code"):
        for step in steps(block):
            Console(client, "test").run(step)


def test_console_checks_the_demo_command_line() -> None:
    console = Console(None, "test")
    console.run(Step("T=$(python -m testproject token --tenant t --user u --scope a.b.c)", [], 1))
    assert console.env["T"].count(".") == 2
    with pytest.raises(pytest.fail.Exception, match="not a valid invocation"):
        console.run(Step("python -m testproject token --tenant t --scopes a.b.c", [], 1))


# -- the change feed's transcript (a stream never ends: replayed as a subscription) ---------


@pytest.fixture
def feed(app: FastAPI, transactional_db: None, settings: Any) -> Iterator[TestClient]:
    yield from feed_client(app, settings)


def documented_frames(text: str) -> list[dict[str, Any]]:
    frames = []
    for chunk in text.strip().split("\n\n"):
        frame: dict[str, Any] = {}
        for line in chunk.splitlines():
            name, _, value = line.partition(":")
            frame[name or "comment"] = value.strip()
        frames.append(frame)
    return frames


def test_live_page_transcript_is_what_a_subscriber_sees(feed: TestClient) -> None:
    (block,) = [b for b in blocks(DOCS / "live.md") if b.lang == "text" and b.body.startswith("$ curl -N")]
    command, _, transcript = block.body.partition("\n")
    assert command == '$ curl -N -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/companies/subscribe'
    expected = documented_frames(transcript)
    assert [frame.get("event", frame.get("comment")) for frame in expected] == ["ready", "INSERT", "ping", "DELETE"]

    headers = auth(tenant="demo", user="demo-user")
    with subscribe(feed, "/companies/subscribe", headers=headers) as reader:
        seen = [ready(reader)]
        created = feed.post("/companies", json={"name": "Initech 2"}, headers=headers)
        assert created.status_code == 201, created.text
        seen.append(reader.changes(1)[0])
        seen.append(reader.until(lambda frame: "ping" in frame.comments)[-1])
        assert feed.delete(f"/companies/{created.json()['id']}", headers=headers).status_code == 204
        seen.append(reader.changes(1)[0])

    bindings, ids = Bindings(), {}
    for documented, frame in zip(expected, seen, strict=True):
        if "comment" in documented:
            assert documented["comment"] in frame.comments
            continue
        assert frame.event == documented["event"] and frame.id is not None
        ids[int(documented["id"])] = frame.id
        pattern = PatternParser(documented["data"]).parse()
        assert isinstance(pattern, Members)
        pattern.members["id"] = ids[pattern.members["id"]]  # ids are the outbox's: compare in order
        bindings.match(pattern, frame.data, f"{block}, {documented['event']}")
    assert list(ids.values()) == sorted(ids.values())
