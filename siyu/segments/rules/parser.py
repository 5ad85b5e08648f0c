"""Text form → AST: a recursive-descent parser over :mod:`lexer` tokens.

Precedence is ``not`` > ``and`` > ``or``; keywords are case-insensitive, names are not. When
the text does not parse, the error names the furthest position reached and everything that
would have been accepted there (collected as the parser tries alternatives).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from siyu.segments.rules.ast import (
    SEGMENT_KEY,
    And,
    ConsentCondition,
    DateLiteral,
    DidCondition,
    EventCondition,
    FieldCondition,
    Measure,
    Not,
    Op,
    Or,
    Rule,
    Scalar,
    SegmentCondition,
    SequenceCondition,
    TagCondition,
    TraitCondition,
    Value,
    Where,
    WhereAnd,
    WhereNot,
    WhereOr,
    Window,
)
from siyu.segments.rules.errors import RuleSyntaxError
from siyu.segments.rules.lexer import Kind, Token, tokenize

_COMPARE = {"=": Op.EQ, "!=": Op.NE, ">": Op.GT, ">=": Op.GE, "<": Op.LT, "<=": Op.LE}
_LITERAL = ["a string", "a number", "'true'", "'false'", "'date'"]
_FIELD_MEASURES = ("sum", "avg", "max", "min")
M = TypeVar("M", bound=BaseModel)
_SNAKE = re.compile(SEGMENT_KEY)


def parse(text: str) -> Rule:
    """The AST of a rule's text form; raises :class:`RuleSyntaxError` with position and
    what was expected."""
    return _Parser(text).rule()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0
        self.expected_at = -1
        self.expected: list[str] = []

    # -- token helpers -------------------------------------------------------------------

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def _expect_here(self, *what: str) -> None:
        position = self.token.position
        if position != self.expected_at:
            self.expected_at = position
            self.expected = []
        for item in what:
            if item not in self.expected:
                self.expected.append(item)

    def fail(self, *what: str) -> RuleSyntaxError:
        self._expect_here(*what)
        return RuleSyntaxError(
            text=self.text,
            position=self.token.position,
            expected=list(self.expected),
            found=self.token.describe(),
        )

    def advance(self) -> Token:
        token = self.token
        if token.kind is not Kind.EOF:
            self.index += 1
        return token

    def at_keyword(self, word: str) -> bool:
        token = self.token
        if token.kind is Kind.IDENT and token.text.lower() == word:
            return True
        self._expect_here(f"'{word}'")
        return False

    def accept_keyword(self, word: str) -> bool:
        if self.at_keyword(word):
            self.advance()
            return True
        return False

    def keyword(self, word: str) -> None:
        if not self.accept_keyword(word):
            raise self.fail()

    def accept_punct(self, punct: str) -> bool:
        if self.token.kind is Kind.PUNCT and self.token.text == punct:
            self.advance()
            return True
        self._expect_here(f"'{punct}'")
        return False

    def punct(self, punct: str) -> None:
        if not self.accept_punct(punct):
            raise self.fail()

    def name(self, what: str = "a name") -> str:
        if self.token.kind is Kind.IDENT:
            return self.advance().text
        raise self.fail(what)

    def days(self) -> int:
        token = self.token
        if token.kind is Kind.DAYS and isinstance(token.value, int) and token.value >= 1:
            self.advance()
            return token.value
        raise self.fail("a number of days (e.g. 30d)")

    def build(self, model: type[M], start: Token, **fields: Any) -> M:
        try:
            return model.model_validate(fields)
        except ValidationError as exc:
            message = exc.errors()[0]["msg"].removeprefix("Value error, ")
            raise RuleSyntaxError(
                text=self.text, position=start.position, expected=[message], found=start.describe()
            ) from None

    # -- boolean structure ---------------------------------------------------------------

    def rule(self) -> Rule:
        rule = self.or_expr()
        if self.token.kind is not Kind.EOF:
            raise self.fail("end of input")
        return rule

    def or_expr(self) -> Rule:
        start = self.token
        items = [self.and_expr()]
        while self.accept_keyword("or"):
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else self.build(Or, start, or_=tuple(items))

    def and_expr(self) -> Rule:
        start = self.token
        items = [self.not_expr()]
        while self.accept_keyword("and"):
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else self.build(And, start, and_=tuple(items))

    def not_expr(self) -> Rule:
        start = self.token
        if self.accept_keyword("not"):
            return self.build(Not, start, not_=self.not_expr())
        if self.accept_punct("("):
            inner = self.or_expr()
            self.punct(")")
            return inner
        return self.leaf()

    # -- leaves --------------------------------------------------------------------------

    def leaf(self) -> Rule:
        start = self.token
        for word in ("tag", "trait"):
            if self.accept_keyword(word):
                self.punct(".")
                key = self.name(f"a {word} key")
                op, value = self.comparison(allow_bare=True, allow_contains=True)
                if word == "tag":
                    return self.build(TagCondition, start, tag=key, op=op, value=value)
                return self.build(TraitCondition, start, trait=key, op=op, value=value)
        if self.accept_keyword("consent"):
            self.punct(".")
            return self.build(ConsentCondition, start, consent=self.name("a channel"))
        if self.accept_keyword("segment"):
            self.punct(".")
            if self.token.kind is Kind.IDENT and _SNAKE.match(self.token.text):
                return self.build(SegmentCondition, start, segment=self.advance().text)
            raise self.fail("a segment key (snake_case)")
        if self.at_keyword("event"):
            return self.event_leaf()
        if self.accept_keyword("did"):
            did = not self.accept_keyword("not")
            if not self.at_keyword("event"):
                raise self.fail()
            name, window, where = self.event_call()
            return self.build(DidCondition, start, did=did, event=name, window=window, where=where)
        if self.accept_keyword("sequence"):
            return self.sequence(start)
        raise self.fail("'('", "'not'")

    def comparison(self, *, allow_bare: bool, allow_contains: bool) -> tuple[Op, Value]:
        token = self.token
        if token.kind is Kind.PUNCT and token.text in _COMPARE:
            self.advance()
            return _COMPARE[token.text], self.literal()
        self._expect_here(*(f"'{op}'" for op in _COMPARE))
        if self.accept_keyword("between"):
            low = self.literal()
            self.keyword("and")
            return Op.BETWEEN, (low, self.literal())
        if self.accept_keyword("in"):
            return Op.IN, self.literal_list()
        if self.accept_keyword("not"):
            self.keyword("in")
            return Op.NOT_IN, self.literal_list()
        if allow_contains and self.accept_keyword("contains"):
            if self.accept_keyword("any"):
                return Op.CONTAINS_ANY, self.literal_list()
            if self.accept_keyword("all"):
                return Op.CONTAINS_ALL, self.literal_list()
            return Op.CONTAINS, self.literal()
        if self.accept_keyword("is"):
            negated = self.accept_keyword("not")
            self.keyword("null")
            return (Op.IS_NOT_NULL if negated else Op.IS_NULL), None
        if allow_bare:
            return Op.EQ, True
        raise self.fail()

    def literal(self) -> Scalar:
        token = self.token
        if token.kind in (Kind.STRING, Kind.NUMBER):
            self.advance()
            assert token.value is not None
            return token.value
        if self.accept_keyword("true"):
            return True
        if self.accept_keyword("false"):
            return False
        if self.accept_keyword("date"):
            return DateLiteral(date=self.date_string())
        raise self.fail(*_LITERAL)

    def date_string(self) -> date:
        token = self.token
        if token.kind is Kind.STRING:
            try:
                value = date.fromisoformat(token.text)
            except ValueError:
                value = None
            if value is not None and len(token.text) == 10:
                self.advance()
                return value
        raise self.fail("a date string 'YYYY-MM-DD'")

    def date_literal(self) -> date:
        self.keyword("date")
        return self.date_string()

    def literal_list(self) -> tuple[Scalar, ...]:
        self.punct("(")
        items = [self.literal()]
        while self.accept_punct(","):
            items.append(self.literal())
        self.punct(")")
        return tuple(items)

    def number(self) -> int | float:
        token = self.token
        if token.kind is Kind.NUMBER and isinstance(token.value, int | float):
            self.advance()
            return token.value
        raise self.fail("a number")

    # -- events --------------------------------------------------------------------------

    def event_call(self) -> tuple[str, Window | None, Where | None]:
        self.keyword("event")
        self.punct("(")
        name = self.name("an event name")
        window: Window | None = None
        where: Where | None = None
        while self.accept_punct(","):
            if window is None and where is None:
                window = self.window(optional=True)
                if window is not None:
                    continue
            if where is None and self.accept_keyword("where"):
                where = self.filter_or()
                continue
            raise self.fail()
        self.punct(")")
        return name, window, where

    def window(self, *, optional: bool) -> Window | None:
        start = self.token
        if self.accept_keyword("last"):
            return self.build(Window, start, last_days=self.days())
        if self.accept_keyword("since"):
            return self.build(Window, start, since=self.date_literal())
        if self.accept_keyword("between"):
            low = self.date_literal()
            self.keyword("and")
            return self.build(Window, start, between=(low, self.date_literal()))
        if optional:
            return None
        raise self.fail()

    def event_leaf(self) -> Rule:
        start = self.token
        name, window, where = self.event_call()
        self.punct(".")
        of: str | None = None
        token = self.token
        word = token.text.lower() if token.kind is Kind.IDENT else ""
        if word in ("count", "days"):
            self.advance()
            measure = Measure(word)
        elif word in _FIELD_MEASURES:
            self.advance()
            measure = Measure(word)
            self.punct("(")
            of = self.field()
            self.punct(")")
        else:
            raise self.fail(*(f"'{m}'" for m in ("count", "days", *_FIELD_MEASURES)))
        op_token = self.token
        value: int | float | tuple[int | float, int | float]
        if op_token.kind is Kind.PUNCT and op_token.text in _COMPARE:
            self.advance()
            op = _COMPARE[op_token.text]
            value = self.number()
        else:
            self._expect_here(*(f"'{op}'" for op in _COMPARE))
            self.keyword("between")
            op = Op.BETWEEN
            low = self.number()
            self.keyword("and")
            value = (low, self.number())
        return self.build(
            EventCondition,
            start,
            event=name,
            window=window,
            where=where,
            measure=measure,
            of=of,
            op=op,
            value=value,
        )

    def field(self) -> str:
        if self.accept_keyword("properties"):
            if self.accept_punct("."):
                return "properties." + self.name("a property key")
            return "properties"  # not a field: check() names it
        return self.name("an event field")

    def filter_or(self) -> Where:
        start = self.token
        items = [self.filter_and()]
        while self.accept_keyword("or"):
            items.append(self.filter_and())
        return items[0] if len(items) == 1 else self.build(WhereOr, start, or_=tuple(items))

    def filter_and(self) -> Where:
        start = self.token
        items = [self.filter_not()]
        while self.accept_keyword("and"):
            items.append(self.filter_not())
        return items[0] if len(items) == 1 else self.build(WhereAnd, start, and_=tuple(items))

    def filter_not(self) -> Where:
        start = self.token
        if self.accept_keyword("not"):
            return self.build(WhereNot, start, not_=self.filter_not())
        if self.accept_punct("("):
            inner = self.filter_or()
            self.punct(")")
            return inner
        field = self.field()
        op, value = self.comparison(allow_bare=False, allow_contains=False)
        return self.build(FieldCondition, start, field=field, op=op, value=value)

    def sequence(self, start: Token) -> Rule:
        self.punct("(")
        steps = [self.name("an event name")]
        self.keyword("then")
        steps.append(self.name("an event name"))
        while self.accept_keyword("then"):
            steps.append(self.name("an event name"))
        self.keyword("within")
        within = self.days()
        window: Window | None = None
        if self.accept_punct(","):
            window = self.window(optional=False)
        self.punct(")")
        return self.build(
            SequenceCondition, start, sequence=tuple(steps), within_days=within, window=window
        )
