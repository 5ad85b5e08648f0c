"""Tokens of the rule text: identifiers/keywords, numbers, day counts, strings, punctuation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from siyu.segments.rules.errors import RuleSyntaxError


class Kind(StrEnum):
    IDENT = "identifier"
    NUMBER = "number"
    DAYS = "number of days (e.g. 30d)"
    STRING = "string"
    PUNCT = "punctuation"
    EOF = "end of input"


@dataclass(frozen=True)
class Token:
    kind: Kind
    text: str  # the source text (for STRING: the decoded value)
    position: int
    value: int | float | str | None = None

    def describe(self) -> str:
        if self.kind is Kind.EOF:
            return "end of input"
        if self.kind is Kind.STRING:
            return f"string '{self.text}'"
        return f"'{self.text}'"


_SPACE = re.compile(r"\s+")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_DAYS = re.compile(r"(\d+)[dD](?![A-Za-z0-9_])")
_PUNCT = ("!=", "<>", ">=", "<=", "=", ">", "<", "(", ")", ",", ".")


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``, ending with an EOF token; a bad character is a syntax error."""
    tokens: list[Token] = []
    position = 0
    length = len(text)
    while True:
        space = _SPACE.match(text, position)
        if space:
            position = space.end()
        if position >= length:
            tokens.append(Token(Kind.EOF, "", position))
            return tokens
        char = text[position]
        if char == "'":
            value, end = _string(text, position)
            tokens.append(Token(Kind.STRING, value, position, value))
            position = end
            continue
        days = _DAYS.match(text, position)
        if days:
            tokens.append(Token(Kind.DAYS, days.group(0), position, int(days.group(1))))
            position = days.end()
            continue
        number = _NUMBER.match(text, position)
        if number and not _IDENT.match(text, number.end()):
            source = number.group(0)
            parsed: int | float = float(source) if any(c in source for c in ".eE") else int(source)
            tokens.append(Token(Kind.NUMBER, source, position, parsed))
            position = number.end()
            continue
        ident = _IDENT.match(text, position)
        if ident:
            tokens.append(Token(Kind.IDENT, ident.group(0), position, ident.group(0)))
            position = ident.end()
            continue
        for punct in _PUNCT:
            if text.startswith(punct, position):
                shown = "!=" if punct == "<>" else punct
                tokens.append(Token(Kind.PUNCT, shown, position))
                position += len(punct)
                break
        else:
            raise RuleSyntaxError(
                text=text,
                position=position,
                expected=["a condition, operator or literal"],
                found=f"'{char}'",
            )


def _string(text: str, start: int) -> tuple[str, int]:
    """A single-quoted string at ``start``: ``''`` and ``\\'`` are quotes, ``\\\\`` a backslash."""
    out: list[str] = []
    position = start + 1
    while position < len(text):
        char = text[position]
        if char == "'":
            if text.startswith("''", position):
                out.append("'")
                position += 2
                continue
            return "".join(out), position + 1
        if char == "\\" and position + 1 < len(text) and text[position + 1] in "'\\":
            out.append(text[position + 1])
            position += 2
            continue
        out.append(char)
        position += 1
    raise RuleSyntaxError(
        text=text, position=len(text), expected=["closing quote '"], found="end of input"
    )


def quote(value: str) -> str:
    """``value`` as a string literal the lexer reads back unchanged."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
