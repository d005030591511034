"""Parsing the emulated device's shell language: the small part of sh that adb users type.

Supported: words with sh quoting (``'…'``, ``"…"``, backslash), ``$?``, ``$NAME`` and ``${NAME}``,
``NAME=value`` prefixes, ``;`` and newlines, ``&&``, ``||``, ``|``, redirections (``>``, ``>>``,
``<``, ``2>``, ``2>&1``, ``>&2``, ``&>``) and ``#`` comments. Globs are kept in the words (with
which characters were quoted) and expanded at run time against the device's file system.

Not supported, and rejected with a one-line syntax error instead of being misread: command
substitution, subshells, background jobs, here-documents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from device_agent.emulator.limits import MAX_COMMAND_LINE, MAX_SHELL_STEPS
from device_agent.errors import AgentError

__all__ = ["ShellSyntaxError", "Segment", "Word", "Redirect", "Command", "Pipeline", "AndOr", "parse", "lex"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLAIN = re.compile(r"[^ \t\n;&|<>()`\\'\"$]+")  # characters with no meaning to the lexer
_PLAIN_QUOTED = re.compile(r'[^"\\$`]+')
_SPECIAL_VARS = "?$#0123456789@*!-"


class ShellSyntaxError(AgentError):
    """A command line the emulated shell cannot parse; the message says what and where."""


class Segment(NamedTuple):
    """A run of characters in a word: literal text (quoted or not) or a variable to expand."""

    text: str
    quoted: bool
    var: bool = False


Word = tuple[Segment, ...]


@dataclass(frozen=True)
class Redirect:
    fd: int  # 0 stdin, 1 stdout, 2 stderr; -1 for "&>" (stdout and stderr)
    op: str  # ">", ">>", "<", ">&" (duplicate: target is the fd number as a word)
    target: Word


@dataclass
class Command:
    assigns: list[tuple[str, Word]] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)


Pipeline = list[Command]
AndOr = list[tuple[str, Pipeline]]  # ("", first), then ("&&" | "||", next)


@dataclass(frozen=True)
class _Op:
    text: str


@dataclass(frozen=True)
class _Redir:
    fd: int
    op: str


_Token = Word | _Op | _Redir
_OPS = {text: _Op(text) for text in ("\n", ";", "&&", "||", "|")}


class _Lexer:
    """Turns a command line into tokens in one pass: each character is looked at a bounded number of
    times and every word is joined once, so the time is linear in the length of the line.

    ``steps`` counts the loop's iterations (at most one per character); more than ``max_steps``
    is a syntax error rather than a pinned CPU.
    """

    def __init__(self, text: str, max_steps: int = MAX_SHELL_STEPS) -> None:
        self.text = text
        self.i = 0
        self.tokens: list[_Token] = []
        self.word: list[Segment] | None = None
        self._parts: list[str] = []  # literal text not yet made a Segment, all quoted alike
        self._quoted = False
        self.steps = 0
        self.max_steps = max_steps

    def _add(self, text: str, quoted: bool, var: bool = False) -> None:
        if self.word is None:
            self.word = []
        if var or quoted != self._quoted:
            self._flush()
        if var:
            self.word.append(Segment(text, quoted, True))
        else:
            self._quoted = quoted
            self._parts.append(text)

    def _flush(self) -> None:
        if self._parts and self.word is not None:
            self.word.append(Segment("".join(self._parts), self._quoted))
        self._parts = []

    def _end_word(self) -> None:
        if self.word is not None:
            self._flush()
            self.tokens.append(tuple(self.word))
            self.word = None

    def _step(self) -> None:
        self.steps += 1
        if self.steps > self.max_steps:
            raise ShellSyntaxError(f"command line too complex: more than {self.max_steps} lexer steps")

    def _unsupported(self, what: str) -> ShellSyntaxError:
        return ShellSyntaxError(f"{what} not supported by the emulated device's shell (at column {self.i + 1})")

    def run(self) -> list[_Token]:
        text = self.text
        while self.i < len(text):
            self._step()
            c = text[self.i]
            if c in " \t":
                self._end_word()
            elif c == "\n":
                self._end_word()
                self.tokens.append(_OPS["\n"])
            elif c == "#" and self.word is None:
                end = text.find("\n", self.i)
                self.i = len(text) if end < 0 else end
                continue
            elif c == ";":
                self._end_word()
                self.tokens.append(_OPS[";"])
            elif c == "&":
                self._end_word()
                if text.startswith("&&", self.i):
                    self.tokens.append(_OPS["&&"])
                    self.i += 1
                elif text.startswith("&>", self.i):
                    self.i += 1
                    append = text.startswith(">", self.i + 1)
                    self.i += append
                    self.tokens.append(_Redir(-1, ">>" if append else ">"))
                else:
                    raise self._unsupported("background jobs (&) are")
            elif c == "|":
                self._end_word()
                double = text.startswith("||", self.i)
                self.tokens.append(_OPS["||" if double else "|"])
                self.i += double
            elif c in "<>":
                self._redirect(c)
                continue
            elif c in "()":
                raise self._unsupported("subshells ( ) are")
            elif c == "`":
                raise self._unsupported("command substitution (`…`) is")
            elif c == "\\":
                if self.i + 1 < len(text):
                    nxt = text[self.i + 1]
                    if nxt != "\n":
                        self._add(nxt, True)
                    self.i += 1
                else:
                    self._add("\\", False)
            elif c == "'":
                end = text.find("'", self.i + 1)
                if end < 0:
                    raise ShellSyntaxError(f"unterminated quoted string starting at column {self.i + 1}")
                self._add(text[self.i + 1:end], True)
                self.i = end
            elif c == '"':
                self._double_quoted()
            elif c == "$":
                self._dollar(quoted=False)
                continue
            else:
                run = _PLAIN.match(text, self.i)  # a run of ordinary characters in one step
                end = run.end() if run else self.i + 1
                self._add(text[self.i:end], False)
                self.i = end
                continue
            self.i += 1
        self._end_word()
        return self.tokens

    def _redirect(self, c: str) -> None:
        text = self.text
        fd = 0 if c == "<" else 1
        if self.word is not None:
            self._flush()
            if len(self.word) == 1 and not self.word[0].quoted and self.word[0].text in ("0", "1", "2"):
                fd = int(self.word[0].text)
                self.word = None
            else:
                self._end_word()
        if text.startswith("<<", self.i):
            raise self._unsupported("here-documents (<<) are")
        if text.startswith(">>", self.i):
            op, self.i = ">>", self.i + 2
        elif text.startswith(">&", self.i) or text.startswith("<&", self.i):
            op, self.i = ">&", self.i + 2
        elif text.startswith(">|", self.i):
            op, self.i = ">", self.i + 2
        else:
            op, self.i = c, self.i + 1
        self.tokens.append(_Redir(fd, op))

    def _double_quoted(self) -> None:
        text = self.text
        start = self.i
        self.i += 1
        self._add("", True)  # "" is a word even when empty
        while self.i < len(text) and text[self.i] != '"':
            self._step()
            c = text[self.i]
            if c == "\\" and self.i + 1 < len(text) and text[self.i + 1] in '$`"\\\n':
                if text[self.i + 1] != "\n":
                    self._add(text[self.i + 1], True)
                self.i += 2
            elif c == "$":
                self._dollar(quoted=True)
            elif c == "`":
                raise self._unsupported("command substitution (`…`) is")
            else:
                run = _PLAIN_QUOTED.match(text, self.i)
                end = run.end() if run else self.i + 1
                self._add(text[self.i:end], True)
                self.i = end
        if self.i >= len(text):
            raise ShellSyntaxError(f"unterminated quoted string starting at column {start + 1}")

    def _dollar(self, quoted: bool) -> None:
        """Consume a ``$`` expansion at ``self.i`` (leaving ``self.i`` after it)."""
        text = self.text
        nxt = text[self.i + 1] if self.i + 1 < len(text) else ""
        if nxt == "(":
            raise self._unsupported("command substitution $( ) is")
        if nxt == "{":
            end = text.find("}", self.i + 2)
            name = text[self.i + 2:end] if end > 0 else ""
            if not (_NAME.fullmatch(name) or (len(name) == 1 and name in _SPECIAL_VARS)):
                raise ShellSyntaxError(f"bad substitution at column {self.i + 1}")
            self._add(name, quoted, var=True)
            self.i = end + 1
            return
        if nxt and nxt in _SPECIAL_VARS:
            self._add(nxt, quoted, var=True)
            self.i += 2
            return
        match = _NAME.match(text, self.i + 1)
        if match:
            self._add(match.group(), quoted, var=True)
            self.i = match.end()
            return
        self._add("$", quoted)
        self.i += 1


def lex(text: str, max_steps: int = MAX_SHELL_STEPS) -> tuple[int, int]:
    """Lex ``text`` with no length limit; returns (tokens, steps taken). For tests and benchmarks
    of the lexer's cost. Raises ShellSyntaxError as :func:`parse` does."""
    lexer = _Lexer(text, max_steps)
    return len(lexer.run()), lexer.steps


def _word_text(word: Word) -> str:
    return "".join(("$" + s.text) if s.var else s.text for s in word)


def parse(text: str) -> list[AndOr]:
    """Parse a command line into lists of pipelines joined by ``&&``/``||``.

    Raises:
        ShellSyntaxError: unbalanced quotes, a missing command around an operator, a
            redirection without a target, an unsupported construct, or a line longer than
            MAX_COMMAND_LINE characters (refused before it is looked at).
    """
    if len(text) > MAX_COMMAND_LINE:
        raise ShellSyntaxError(f"command line too long: {len(text)} characters (at most {MAX_COMMAND_LINE})")
    tokens = _Lexer(text).run()
    script: list[AndOr] = []
    and_or: AndOr = []
    pipeline: Pipeline = []
    command = Command()
    joiner = ""

    def has_command() -> bool:
        return bool(command.words or command.assigns or command.redirects)

    def finish_command(op: str) -> None:
        nonlocal command
        if not has_command():
            raise ShellSyntaxError(f"unexpected '{op}': a command is missing before it")
        pipeline.append(command)
        command = Command()

    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if isinstance(token, tuple):
            assignment = _assignment(token) if not command.words else None
            if assignment is not None:
                command.assigns.append(assignment)
            else:
                command.words.append(token)
        elif isinstance(token, _Redir):
            target = tokens[i] if i < len(tokens) else None
            if not isinstance(target, tuple):
                raise ShellSyntaxError(f"redirection {'&' if token.fd < 0 else ''}{token.op} has no target")
            if token.op == ">&" and _word_text(target) not in ("0", "1", "2"):
                raise ShellSyntaxError(f"bad file descriptor in >&{_word_text(target)}")
            command.redirects.append(Redirect(token.fd, token.op, target))
            i += 1
        elif token.text == "|":
            finish_command("|")
        elif token.text in ("&&", "||"):
            finish_command(token.text)
            and_or.append((joiner, pipeline))
            pipeline, joiner = [], token.text
        elif token.text == "\n" and not has_command() and (pipeline or joiner):
            continue  # "a &&<newline>b" and "a |<newline>b" go on on the next line
        else:  # ";" or a newline ends a list
            if has_command():
                finish_command(token.text)
            elif token.text == ";":
                raise ShellSyntaxError("unexpected ';': a command is missing before it")
            if pipeline:
                and_or.append((joiner, pipeline))
                script.append(and_or)
            and_or, pipeline, joiner = [], [], ""
    if has_command():
        finish_command(";")
    elif pipeline or joiner:
        raise ShellSyntaxError(f"unexpected end of command after '{joiner or '|'}'")
    if pipeline:
        and_or.append((joiner, pipeline))
        script.append(and_or)
    return script


def _assignment(word: Word) -> tuple[str, Word] | None:
    """``NAME=value`` as (name, value word), if ``word`` is one."""
    first = word[0] if word else None
    if first is None or first.quoted or first.var or "=" not in first.text:
        return None
    name, _, value = first.text.partition("=")
    if not _NAME.fullmatch(name):
        return None
    return name, ((Segment(value, False),) if value else ()) + word[1:]
