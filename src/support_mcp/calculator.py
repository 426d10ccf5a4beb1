"""Safe arithmetic with exact decimal results, for the global ``calculator`` tool.

Built on simpleeval: ``_DecimalEval`` subclasses ``SimpleEval`` and handles only
numbers, arithmetic operators and five functions. A literal becomes a ``Decimal``
made from its source text, so ``0.1 + 0.2`` is exactly ``0.3``. First, an iterative
whitelist pass over the ``ast`` refuses any other construct with a clear message.

Supported: ``12 .5 1_000 1e3``, ``+ - * / // % **``, parentheses, unary ``-``/``+``,
``round(x[, n])`` (half to even, as in Python), ``abs``, ``min``, ``max``, ``sqrt``.
``//`` and ``%`` floor as in Python, and ``-2**2 == -4``. Values have 50 significant
digits in a local ROUND_HALF_EVEN context. The global context is never touched.

Percent: a ``%`` after a number or ``)`` and followed by the end, ``)`` or an operator is a
percentage, as on a pocket calculator: added to or subtracted from what stands before it,
``x + p%`` is ``x * (1 + p/100)`` and ``x - p%`` is ``x * (1 - p/100)`` (``200 + 10%`` = 220,
``19.99 * 3 - 10%`` = 53.973); anywhere else it is p/100 (``15%`` = 0.15, ``200 * 15%`` = 30).
Before a number, ``(`` or a name it is modulo: ``10 % 3`` = 1 (``10 % -3`` = 10% - 3).

Limits: 1000 characters, 50 levels of parentheses, magnitudes up to 1e100, whole
exponents up to 1000, ``round`` places within +/-50, 100 arguments per call.
"""

from __future__ import annotations

import ast
import decimal
import operator
import re
import warnings
from decimal import ROUND_HALF_EVEN, Decimal

from simpleeval import SimpleEval

__all__ = ["CalculatorError", "evaluate", "format_result"]

MAX_LENGTH, MAX_PAREN_DEPTH, MAX_NODE_DEPTH, MAX_ARGS = 1000, 50, 100, 100
MAX_MAGNITUDE, MAX_EXPONENT, MAX_PLACES = Decimal("1e100"), 1000, 50

_TRAPS = [decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow]
# Templates only: decimal.localcontext() installs a copy, so neither these nor the
# global context are ever modified (not even their flags).
_CTX = decimal.Context(prec=50, rounding=ROUND_HALF_EVEN, traps=_TRAPS)
_WIDE = decimal.Context(prec=250, rounding=ROUND_HALF_EVEN, traps=_TRAPS)  # exact // and %


class CalculatorError(ValueError):
    """The expression is invalid or not allowed; str(err) is a user-facing message."""


def _nonzero(b: Decimal) -> Decimal:
    if b == 0:
        raise CalculatorError("division by zero")
    return b


def _floor_divmod(a: Decimal, b: Decimal) -> tuple[Decimal, Decimal]:
    with decimal.localcontext(_WIDE):  # Decimal's divmod truncates toward zero
        q, r = divmod(a, _nonzero(b))
        if r != 0 and (r < 0) != (b < 0):
            q, r = q - 1, r + b
    return +q, +r  # back to the 50-digit working precision


def _power(a: Decimal, b: Decimal) -> Decimal:
    if b != b.to_integral_value():
        raise CalculatorError("exponents must be whole numbers (use sqrt for square roots)")
    if abs(b) > MAX_EXPONENT:
        raise CalculatorError(f"exponent is too large (max {MAX_EXPONENT})")
    if a == 0:
        if b < 0:
            raise CalculatorError("division by zero")
        return Decimal(int(b == 0))  # 0**0 == 1, as in Python
    adj = a.adjusted()  # floor(log10|a|): the result has about |b| * log10|a| digits
    if abs(b) * max(abs(adj), abs(adj + 1)) > MAX_EXPONENT:
        raise CalculatorError(f"the result of ** would have more than {MAX_EXPONENT} digits")
    return a ** int(b)


def _round(x: Decimal, places: Decimal = Decimal(0)) -> Decimal:
    if places != places.to_integral_value() or abs(places) > MAX_PLACES:
        raise CalculatorError(
            f"round(): decimal places must be a whole number from -{MAX_PLACES} to {MAX_PLACES}")
    if x.as_tuple().exponent >= -places:  # already has no more than `places` decimals
        return x
    return x.quantize(Decimal(1).scaleb(-int(places)), rounding=ROUND_HALF_EVEN)


def _sqrt(x: Decimal) -> Decimal:
    if x < 0:
        raise CalculatorError("cannot take the square root of a negative number")
    return x.sqrt()


_OPERATORS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: lambda a, b: a / _nonzero(b), ast.Pow: _power,
    ast.FloorDiv: lambda a, b: _floor_divmod(a, b)[0], ast.Mod: lambda a, b: _floor_divmod(a, b)[1],
    ast.MatMult: lambda a, b: a / b,  # only as "(p @ 100)", which _rewrite_percent writes for "p%"
    ast.USub: operator.neg, ast.UAdd: operator.pos,
}
_FUNCTIONS = {"round": _round, "abs": abs, "sqrt": _sqrt,
              "min": lambda *args: min(args), "max": lambda *args: max(args)}
_MAX_ARITY = {"round": 2, "abs": 1, "sqrt": 1}  # min and max take 1..MAX_ARGS
_CALLABLE = "only round, abs, min, max, sqrt may be called"
_SYMBOLS = {ast.LShift: "<<", ast.RShift: ">>", ast.BitAnd: "&", ast.BitOr: "|",
            ast.BitXor: "^", ast.MatMult: "@", ast.Invert: "~", ast.Not: "not"}
_KINDS = {
    ast.List: "lists", ast.Tuple: "tuples", ast.Set: "sets", ast.Dict: "dictionaries",
    ast.Subscript: "subscripts (indexing with [...])", ast.Slice: "slices",
    ast.Lambda: "lambda functions", ast.ListComp: "comprehensions", ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions", ast.GeneratorExp: "generator expressions",
    ast.Compare: "comparisons", ast.BoolOp: "'and' / 'or'", ast.IfExp: "conditional expressions",
    ast.NamedExpr: "assignments", ast.JoinedStr: "strings", ast.Starred: "'*' arguments",
}


def _validate(tree: ast.AST) -> None:
    """Whitelist walk, iterative so that a deep tree cannot overflow the stack."""
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NODE_DEPTH:
            raise CalculatorError("expression is too deeply nested")
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, (str, bytes, complex)):
                kind = "complex numbers" if isinstance(value, complex) else "strings"
                raise CalculatorError(f"{kind} are not allowed")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise CalculatorError(f"only numbers are allowed, not {value!r}")
        elif isinstance(node, (ast.BinOp, ast.UnaryOp)):
            if type(node.op) not in _OPERATORS:
                symbol = _SYMBOLS.get(type(node.op), type(node.op).__name__)
                raise CalculatorError(f"operator '{symbol}' is not allowed")
            if isinstance(node, ast.BinOp):  # left chains are evaluated iteratively
                stack += [(node.left, depth), (node.right, depth + 1)]
            else:
                stack.append((node.operand, depth + 1))
        elif isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else None
            if name not in _FUNCTIONS:
                raise CalculatorError(f"{name!r} cannot be called: {_CALLABLE}" if name else _CALLABLE)
            if node.keywords:
                raise CalculatorError("keyword arguments are not allowed")
            if len(node.args) > MAX_ARGS:
                raise CalculatorError(f"too many arguments (max {MAX_ARGS})")
            if not node.args:
                raise CalculatorError(f"{name}() needs at least one argument")
            if len(node.args) > _MAX_ARITY.get(name, MAX_ARGS):
                takes = "1 or 2 arguments" if name == "round" else "one argument"
                raise CalculatorError(f"{name}() takes {takes}")
            stack += [(arg, depth + 1) for arg in node.args]
        elif isinstance(node, ast.Name):
            raise CalculatorError(f"names are not allowed: {node.id!r}")
        elif isinstance(node, ast.Attribute):
            raise CalculatorError(f"attribute access is not allowed: '.{node.attr}'")
        else:
            kind = _KINDS.get(type(node), f"{type(node).__name__} expressions")
            raise CalculatorError(f"{kind} are not allowed")


def _bounded(value: Decimal) -> Decimal:
    if abs(value) > MAX_MAGNITUDE:
        raise CalculatorError("number is too large (the limit is 1e100)")
    return value


class _DecimalEval(SimpleEval):
    """SimpleEval restricted to (already validated) arithmetic on Decimal values."""

    def __init__(self, source: str) -> None:
        super().__init__(operators=_OPERATORS, functions=_FUNCTIONS, names={})
        self.source = source.encode()  # one line; ast column offsets count UTF-8 bytes
        self.nodes = {ast.Constant: self._eval_constant, ast.UnaryOp: self._eval_unaryop,
                      ast.BinOp: self._eval_binop, ast.Call: self._eval_call}

    def _eval(self, node):
        return _bounded(self.nodes[type(node)](node))

    def _eval_constant(self, node):  # the exact value, from the literal's source text
        text = self.source[node.col_offset:node.end_col_offset].decode()
        try:
            return decimal.getcontext().create_decimal(text.replace("_", ""))
        except decimal.InvalidOperation:  # 0x10, 0o7, 0b1
            raise CalculatorError(f"unsupported number: {text!r}") from None

    def _eval_binop(self, node):  # a + b + c + ... without one stack frame per term
        chain = []
        while isinstance(node, ast.BinOp):
            chain.append(node)
            node = node.left
        value = self._eval(node)
        for binop in reversed(chain):
            right = self._eval(binop.right)
            if isinstance(binop.op, (ast.Add, ast.Sub)) and _is_percent(binop.right):
                right = value * right  # x + p% = x + x*p/100 = x * (1 + p/100)
            value = _bounded(self.operators[type(binop.op)](value, right))
        return value


def _is_percent(node: ast.expr) -> bool:
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult)


_DIGITS = r"[0-9](?:_?[0-9])*"
_TOKEN = re.compile(rf"(?P<num>(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][+-]?{_DIGITS})?)"
                    r"|(?P<name>[^\W\d]\w*)|(?P<space>\s+)|(?P<op>.)", re.DOTALL)


def _rewrite_percent(text: str) -> str:
    """Turn percent signs into "(15@100)" / "((group)@100)": p/100, marked as a percentage."""
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(text)]
    out: list[str] = []
    opens: list[int] = []  # where each open group starts in `out` (with its function name)
    prev: tuple[str, int] = ("op", -1)  # kind and position in `out` of the last token
    for i, (kind, tok) in enumerate(tokens):
        if tok == "%" and prev[0] in ("num", "group"):
            nxt = next((t for t in tokens[i + 1:] if t[0] != "space"), ("op", ")"))
            if nxt[0] == "op" and nxt[1] != "(":
                # "(p@100)": p/100, and a marker for "x ± p%" (see _DecimalEval._eval_binop)
                out[prev[1]:prev[1]] = ["("]
                out.append("@100)")
                continue
        if tok == "(":
            opens.append(prev[1] if prev[0] == "name" else len(out))
        out.append(tok)
        if kind != "space":
            group = tok == ")" and opens
            prev = ("group", opens.pop()) if group else (kind, len(out) - 1)
    return "".join(out)


def _parse(text: str) -> ast.expr:
    try:
        with warnings.catch_warnings(action="ignore"):  # e.g. SyntaxWarning on "1if"
            return ast.parse(text, mode="eval").body
    except SyntaxError as exc:
        near = text[max((exc.offset or 1) - 1, 0):].strip()[:20]
        detail = f"near {near!r}" if near else "(it ends unexpectedly)"
    except (ValueError, RecursionError, MemoryError):  # e.g. NUL bytes
        detail = "(unsupported characters or structure)"
    raise CalculatorError(f"could not parse the expression {detail}")


def evaluate(expression: str) -> Decimal:
    """Evaluate an arithmetic expression exactly; raise CalculatorError if it is invalid."""
    if not isinstance(expression, str):
        raise CalculatorError("expression must be a string")
    if len(expression) > MAX_LENGTH:
        raise CalculatorError(f"expression is too long (max {MAX_LENGTH} characters)")
    text = " ".join(expression.split())  # a single line, so offsets are simple
    if not text:
        raise CalculatorError("expression is empty")
    if "@" in text:  # the percent marker is ours alone
        raise CalculatorError("operator '@' is not allowed")
    depth = 0
    for char in text:  # checked before parsing: CPython's parser chokes on deep nesting
        depth += (char in "([{") - (char in ")]}")
        if depth > MAX_PAREN_DEPTH:
            raise CalculatorError(
                f"expression is too deeply nested (max {MAX_PAREN_DEPTH} levels of parentheses)")
    try:
        with decimal.localcontext(_CTX):
            text = _rewrite_percent(text)
            tree = _parse(text)
            _validate(tree)
            return _DecimalEval(text).eval(text, previously_parsed=tree)
    except decimal.DivisionByZero:
        raise CalculatorError("division by zero") from None
    except decimal.Overflow:
        raise CalculatorError("number is too large (the limit is 1e100)") from None
    except decimal.DecimalException:
        raise CalculatorError("the result cannot be computed within 50 significant digits") from None
    except RecursionError:
        raise CalculatorError("expression is too deeply nested") from None


def format_result(value: Decimal) -> str:
    """Plain string without trailing zeros: "2.50" -> "2.5", "1E+3" -> "1000"."""
    if value.is_zero():
        return "0"
    with decimal.localcontext(_CTX):
        value = value.normalize()
    if -MAX_PLACES <= value.adjusted() <= 100:
        return format(value, "f")
    return str(value)  # extreme magnitudes keep exponent notation, e.g. "1E-60"
