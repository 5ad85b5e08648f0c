"""The formula language of computed tags, compiled to Ibis.

A formula is a Python-syntax expression, parsed with :mod:`ast` and only the nodes below
allowed, so it is safe to take from YAML or the API. Names are other tags' keys (and
``today``, the local date of the refresh); functions are listed in ``FUNCTIONS``::

    ratio(orders_amount_365d, orders_count_365d)
    bucket(age, [18, 25, 35, 50], ['<18', '18-24', '25-34', '35-49', '50+'])
    ntile(days_since_last_order, 5, desc=True)
    case(rfm_r >= 4 and rfm_f >= 4, 'A', rfm_r >= 4, 'B', 'C')
    'silent' if days_since_last_active > 60 else 'active'

Nulls propagate like SQL (a comparison with a null is null); a bool tag stores null as false.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import ibis
import ibis.expr.types as ir

from siyu.core import geo
from siyu.core.errors import InvalidInputError
from siyu.core.i18n import N_

ALLOWED_NAMES_EXTRA = ("today",)


@dataclass(frozen=True)
class FormulaScope:
    """What a formula can see: tag columns by key, the person id and the refresh date."""

    columns: Mapping[str, ir.Value]
    person_id: ir.StringValue
    today: date


def references(expression: str) -> set[str]:
    """The tag keys a formula reads (for the dependency order and cycle checks)."""
    tree = _parse(expression)
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {
        n.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Name) and id(n) not in called and n.id not in ALLOWED_NAMES_EXTRA
    }


def compile_formula(expression: str, scope: FormulaScope) -> ir.Value:
    return _Compiler(scope).visit(_parse(expression).body)


def _parse(expression: str) -> ast.Expression:
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise InvalidInputError(
            N_("Formula {expression!r} has a syntax error at column {column}: {reason}"),
            expression=expression,
            column=exc.offset or 0,
            reason=exc.msg,
        ) from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise InvalidInputError(
                N_("Formula {expression!r} uses {construct}, which formulas do not allow"),
                expression=expression,
                construct=type(node).__name__,
            )
    return tree


_ALLOWED_NODES = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.IfExp,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.List,
    ast.Tuple,
    ast.keyword,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.Mod,
    ast.USub,
    ast.Not,
    ast.And,
    ast.Or,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
    ast.Is,
    ast.IsNot,
)


class _Compiler:
    def __init__(self, scope: FormulaScope) -> None:
        self.scope = scope

    def visit(self, node: ast.AST) -> Any:
        method: Callable[[Any], Any] = getattr(self, f"visit_{type(node).__name__.lower()}")
        return method(node)

    def visit_constant(self, node: ast.Constant) -> Any:
        if node.value is None:
            return ibis.null()
        if isinstance(node.value, bool | int | float | str):
            return ibis.literal(node.value)
        raise _error(
            N_("Formula constant {value!r} is not a number, text or bool"), value=node.value
        )

    def visit_name(self, node: ast.Name) -> Any:
        if node.id == "today":
            return ibis.literal(self.scope.today)
        if node.id not in self.scope.columns:
            raise _error(N_("Formula reads an unknown tag {key!r}"), key=node.id)
        return self.scope.columns[node.id]

    def visit_list(self, node: ast.List | ast.Tuple) -> list[Any]:
        return [self._literal(item) for item in node.elts]

    visit_tuple = visit_list

    def _literal(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, int | float)
        ):
            return -node.operand.value
        raise _error(N_("Formula lists may hold only constants"))

    def visit_binop(self, node: ast.BinOp) -> Any:
        left, right = self.visit(node.left), self.visit(node.right)
        match node.op:
            case ast.Add():
                return left + right
            case ast.Sub():
                return left - right
            case ast.Mult():
                return left * right
            case ast.Div():
                return left / right.nullif(0)
            case ast.Mod():
                return left % right.nullif(0)
        raise _error(N_("Formula operator {op} is not allowed"), op=type(node.op).__name__)

    def visit_unaryop(self, node: ast.UnaryOp) -> Any:
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.USub):
            return -operand
        if isinstance(node.op, ast.Not):
            return ~operand
        raise _error(N_("Formula operator {op} is not allowed"), op=type(node.op).__name__)

    def visit_boolop(self, node: ast.BoolOp) -> Any:
        values = [self.visit(v) for v in node.values]
        result = values[0]
        for value in values[1:]:
            result = (result & value) if isinstance(node.op, ast.And) else (result | value)
        return result

    def visit_compare(self, node: ast.Compare) -> Any:
        result = None
        left = self.visit(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                options = self.visit(comparator)
                if not isinstance(options, list):
                    raise _error(N_("'in' needs a list of constants"))
                part = left.isin(options) if isinstance(op, ast.In) else left.notin(options)
                right = None
            else:
                right = self.visit(comparator)
                part = _compare(op, left, right)
            result = part if result is None else result & part
            left = right
        return result

    def visit_ifexp(self, node: ast.IfExp) -> Any:
        body, orelse = _typed_nulls([self.visit(node.body), self.visit(node.orelse)])
        return ibis.ifelse(self.visit(node.test), body, orelse)

    def visit_call(self, node: ast.Call) -> Any:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            name = node.func.id if isinstance(node.func, ast.Name) else "?"
            raise _error(
                N_("Formula calls an unknown function {name!r}; known: {known}"),
                name=name,
                known=", ".join(sorted(FUNCTIONS)),
            )
        args = [self.visit(a) for a in node.args]
        kwargs = {k.arg: self._literal(k.value) for k in node.keywords if k.arg}
        try:
            return FUNCTIONS[node.func.id](self.scope, *args, **kwargs)
        except TypeError as exc:
            raise _error(
                N_("Formula function {name!r} was called wrongly: {reason}"),
                name=node.func.id,
                reason=str(exc),
            ) from None


def _compare(op: ast.cmpop, left: Any, right: Any) -> Any:
    match op:
        case ast.Eq():
            return left == right
        case ast.NotEq():
            return left != right
        case ast.Lt():
            return left < right
        case ast.LtE():
            return left <= right
        case ast.Gt():
            return left > right
        case ast.GtE():
            return left >= right
        case ast.Is():
            return left.isnull() if _is_null(right) else left == right
        case ast.IsNot():
            return left.notnull() if _is_null(right) else left != right
    raise _error(N_("Formula operator {op} is not allowed"), op=type(op).__name__)


def _is_null(value: Any) -> bool:
    return isinstance(value, ir.Expr) and value.type().is_null()


def _error(message: str, **context: Any) -> InvalidInputError:
    return InvalidInputError(message, **context)


# -- functions ------------------------------------------------------------------------------


def _ratio(scope: FormulaScope, a: Any, b: Any) -> Any:
    return a.cast("float64") / b.cast("float64").nullif(0)


def _bucket(scope: FormulaScope, value: Any, edges: list[Any], labels: list[str]) -> Any:
    """``labels[i]`` for ``edges[i-1] <= value < edges[i]`` (first and last open-ended)."""
    if len(labels) != len(edges) + 1 or list(edges) != sorted(edges):
        raise _error(N_("bucket() needs sorted edges and one more label than edges"))
    branches = [(value < edge, label) for edge, label in zip(edges, labels, strict=False)]
    return ibis.cases((value.isnull(), ibis.null(str)), *branches, else_=ibis.literal(labels[-1]))


def _ntile(scope: FormulaScope, value: Any, n: Any, desc: bool = False) -> Any:
    """Scores 1..n by value (ties broken by person id, so the result is deterministic).

    People with no value get null and are not counted in the tiles.
    """
    tiles = int(n.op().value) if isinstance(n, ir.Expr) else int(n)
    key = value.desc() if desc else value.asc()
    window = ibis.window(group_by=value.isnull(), order_by=[key, scope.person_id])
    score = ibis.ntile(tiles).over(window) + 1
    return ibis.ifelse(value.isnull(), ibis.null("int64"), score.cast("int64"))


def _case(scope: FormulaScope, *args: Any) -> Any:
    if len(args) < 3 or len(args) % 2 == 0:
        raise _error(N_("case() takes condition, value pairs and a default"))
    results = _typed_nulls([*args[1:-1:2], args[-1]])
    pairs = [(args[2 * i], result) for i, result in enumerate(results[:-1])]
    return ibis.cases(*pairs, else_=results[-1])


def _typed_nulls(values: list[Any]) -> list[Any]:
    """Give bare ``None`` results the type of the other results (SQL needs one type)."""
    typed = [v for v in values if not _is_null(v)]
    if not typed:
        return values
    kind = ibis.literal(typed[0]).type() if not isinstance(typed[0], ir.Expr) else typed[0].type()
    return [ibis.null(kind) if _is_null(v) else v for v in values]


def _clip(scope: FormulaScope, value: Any, low: Any, high: Any) -> Any:
    return value.clip(lower=_const(low), upper=_const(high))


def _const(value: Any) -> Any:
    return value.op().value if isinstance(value, ir.Expr) else value


def _days_between(scope: FormulaScope, start: Any, end: Any) -> Any:
    return end.delta(start, unit="day")


def _days_since(scope: FormulaScope, day: Any) -> Any:
    return ibis.literal(scope.today).delta(day, unit="day")


def _age(scope: FormulaScope, birthday: Any) -> Any:
    today = scope.today
    before_birthday = (birthday.month() > today.month) | (
        (birthday.month() == today.month) & (birthday.day() > today.day)
    )
    return (today.year - birthday.year() - before_birthday.cast("int64")).cast("int64")


def _days_to_birthday(scope: FormulaScope, birthday: Any) -> Any:
    """Days from today to the next birthday (0 on the day; 29 Feb counts as 1 Mar)."""
    today = ibis.literal(scope.today)
    this_year = ibis.date(scope.today.year, birthday.month(), 1) + (birthday.day() - 1).as_interval(
        "D"
    )
    next_year = ibis.date(scope.today.year + 1, birthday.month(), 1) + (
        birthday.day() - 1
    ).as_interval("D")
    upcoming = ibis.ifelse(this_year >= today, this_year, next_year)
    return upcoming.delta(today, unit="day")


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "coalesce": lambda scope, *args: ibis.coalesce(*args),
    "nullif": lambda scope, a, b: a.nullif(b),
    "least": lambda scope, *args: ibis.least(*args),
    "greatest": lambda scope, *args: ibis.greatest(*args),
    "abs": lambda scope, a: a.abs(),
    "round": lambda scope, a, digits=0: a.round(_const(digits)),
    "floor": lambda scope, a: a.floor(),
    "ln": lambda scope, a: a.ln(),
    "clip": _clip,
    "ratio": _ratio,
    "bucket": _bucket,
    "ntile": _ntile,
    "case": _case,
    "year": lambda scope, d: d.year(),
    "month": lambda scope, d: d.month(),
    "age": _age,
    "days_between": _days_between,
    "days_since": _days_since,
    "days_to_birthday": _days_to_birthday,
    "size": lambda scope, values: values.length(),
    "contains": lambda scope, values, item: values.contains(item),
    "first": lambda scope, values: values[0],
    "text": lambda scope, a: a.cast("string"),
    "province_of": lambda scope, city: city.substitute(geo.PROVINCE_OF, else_=ibis.null(str)),
    "city_tier_of": lambda scope, city: city.substitute(geo.TIER_OF, else_=ibis.null(str)),
}
