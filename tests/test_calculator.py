"""Tests for the calculator domain logic (support_mcp.calculator)."""

from __future__ import annotations

import decimal
import threading
from decimal import Decimal

import pytest

from support_mcp.calculator import CalculatorError, evaluate, format_result


def _ok(expression: str, expected: str) -> None:
    result = evaluate(expression)
    assert isinstance(result, Decimal)
    assert result == Decimal(expected), f"{expression!r} -> {result!r}"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0.1 + 0.2", "0.3"),
        ("1.1 * 3", "3.3"),
        ("19.99 * 3", "59.97"),
        ("19.99 + 5.01 + 0.10", "25.10"),
        ("0.1 + 0.1 + 0.1 - 0.3", "0"),
        ("1234.56 - 234.56", "1000"),
        ("10 / 4", "2.5"),
        ("round(100 / 3 * 3, 2)", "100"),
        ("1.1 ** 2", "1.21"),
    ],
)
def test_exact_decimal_arithmetic(expression: str, expected: str) -> None:
    _ok(expression, expected)


def test_one_third_has_sane_precision() -> None:
    result = evaluate("1/3")
    assert result == Decimal("0." + "3" * 50)
    assert format_result(result) == "0." + "3" * 50


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3", "9"),
        ("7 // 2", "3"),
        ("-7 // 2", "-4"),  # floors, like Python
        ("-7.5 // 2", "-4"),
        ("7 % 3", "1"),
        ("-7 % 3", "2"),  # remainder takes the divisor's sign, like Python
        ("7.5 % 2", "1.5"),
        ("2 ** 10", "1024"),
        ("2 ** -2", "0.25"),
        ("(-2) ** 3", "-8"),
        ("-2 ** 2", "-4"),  # ** binds tighter than unary minus, like Python
        ("2 ** 3 ** 2", "512"),  # right-associative
        ("0 ** 0", "1"),
        ("-5 + 3", "-2"),
        ("--5", "5"),
        ("+5 - -5", "10"),
        ("-(3 - 10)", "7"),
        ("2 * -3", "-6"),
        (".5 + 1.", "1.5"),
        ("1_000 * 2", "2000"),
        ("1e3 + 1", "1001"),
        ("2.5E-1", "0.25"),
        ("1+1+1+1+1+1+1+1+1+1", "10"),
        ("+".join(["1"] * 500), "500"),  # long flat sums are fine (no deep recursion)
        ("(1 +\n 2) *\t3", "9"),  # any whitespace, including newlines
    ],
)
def test_operators_and_precedence(expression: str, expected: str) -> None:
    _ok(expression, expected)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("15%", "0.15"),
        ("50%", "0.5"),
        ("200 * 15%", "30"),
        ("15% * 200", "30"),
        ("200 * 15 %", "30"),
        ("200 + 10%", "220"),  # x + p% = x * (1 + p/100), as on a calculator (documented)
        ("200 - 10%", "180"),
        ("19.99 * 3 - 10%", "53.973"),  # the tool description's own example
        ("round(19.99 * 3 - 10%, 2)", "53.97"),
        ("100 + 10% + 10%", "121"),  # each percentage applies to the running total
        ("(200 + 10%) * 2", "440"),
        ("200 + 10% * 2", "200.2"),  # a percentage inside a product is just p/100
        ("5 + (3 + 4)%", "5.35"),
        ("100 / 50%", "200"),
        ("-5%", "-0.05"),
        ("(100 + 50)%", "1.5"),
        ("round(150)%", "1.5"),
        ("2 * (3 + 4)% + 1", "1.14"),
        ("1e3%", "10"),
        ("(200 * 15%)", "30"),
        ("10 % 3", "1"),  # followed by a number: modulo
        ("10%3", "1"),
        ("10 % (4)", "2"),
        ("10 % abs(-4)", "2"),
        ("15% + 10 % 3", "1.15"),
        ("10 % -3", "-2.9"),  # documented: an operator follows, so this is 10% - 3
        ("15% - 3", "-2.85"),  # a percentage on the left stays p/100
    ],
)
def test_percentages_and_modulo(expression: str, expected: str) -> None:
    _ok(expression, expected)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("round(2.5)", "2"),  # half to even, like Python's round
        ("round(3.5)", "4"),
        ("round(2.675, 2)", "2.68"),
        ("round(0.125, 2)", "0.12"),
        ("round(1/3, 4)", "0.3333"),
        ("round(1.5, 5)", "1.5"),
        ("round(1234, -2)", "1200"),
        ("abs(-3.5)", "3.5"),
        ("min(3, 1, 2)", "1"),
        ("max(3, 1, 2)", "3"),
        ("max(7)", "7"),
        ("min(-1, -2.5)", "-2.5"),
        ("sqrt(16)", "4"),
        ("sqrt(6.25)", "2.5"),
        ("round(sqrt(2) ** 2, 40)", "2"),
        ("max(1, min(5, 4)) + abs(-1)", "5"),
        ("round(19.99 * 3 * 1.0825, 2)", "64.92"),
    ],
)
def test_functions(expression: str, expected: str) -> None:
    _ok(expression, expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.3", "0.3"),
        ("1E+3", "1000"),
        ("2.50", "2.5"),
        ("59.970", "59.97"),
        ("30.00", "30"),
        ("-0.0", "0"),
        ("0E-7", "0"),
        ("-12.340", "-12.34"),
        ("1E+100", "1" + "0" * 100),
        ("1E-60", "1E-60"),
    ],
)
def test_format_result(value: str, expected: str) -> None:
    assert format_result(Decimal(value)) == expected


def test_evaluate_then_format() -> None:
    assert format_result(evaluate("200 * 15%")) == "30"
    assert format_result(evaluate("0.1 + 0.2")) == "0.3"
    assert format_result(evaluate("1e3")) == "1000"


def test_global_decimal_context_is_untouched() -> None:
    ctx = decimal.getcontext()
    before = (ctx.prec, ctx.rounding, ctx.Emax, ctx.Emin, dict(ctx.traps), dict(ctx.flags))
    evaluate("1/3 + sqrt(2) + round(2.675, 2) + 10 // 3 + 15%")
    with pytest.raises(CalculatorError):
        evaluate("1/0")
    after = (ctx.prec, ctx.rounding, ctx.Emax, ctx.Emin, dict(ctx.traps), dict(ctx.flags))
    assert decimal.getcontext() is ctx
    assert after == before


ATTACKS = [
    ("__import__('os').system('ls')", "only round, abs, min, max, sqrt may be called"),
    ("().__class__.__bases__[0]", "not allowed"),
    ("().__class__", "attribute access is not allowed: '.__class__'"),
    ("open('/etc/passwd')", "'open' cannot be called: only round, abs, min, max, sqrt"),
    ("x", "names are not allowed: 'x'"),
    ("os", "names are not allowed: 'os'"),
    ("[1,2]", "lists are not allowed"),
    ("(1, 2)", "tuples are not allowed"),
    ("{1: 2}", "dictionaries are not allowed"),
    ("'a'*10", "strings are not allowed"),
    ("f'{1}'", "strings are not allowed"),
    ("lambda: 1", "lambda functions are not allowed"),
    ("[i for i in (1,)]", "comprehensions are not allowed"),
    ("1 if 1 else 2", "conditional expressions are not allowed"),
    ("1 < 2", "comparisons are not allowed"),
    ("1 and 2", "'and' / 'or' are not allowed"),
    ("1 << 3", "operator '<<' is not allowed"),
    ("~1", "operator '~' is not allowed"),
    ("True", "only numbers are allowed"),
    ("None", "only numbers are allowed"),
    ("1j", "complex numbers are not allowed"),
    ("0x10", "unsupported number: '0x10'"),
    ("abs(x=1)", "keyword arguments are not allowed"),
    ("abs(1, 2)", "abs() takes one argument"),
    ("round(1, 2, 3)", "round() takes 1 or 2 arguments"),
    ("(y := 1)", "assignments are not allowed"),
    ("1; 2", "could not parse the expression near"),
    ("x = 1", "could not parse the expression near"),
    ("import os", "could not parse the expression near"),
    ("9**9**9**9", "exponent is too large"),
    ("10**100000", "exponent is too large"),
    ("2**-100000", "exponent is too large"),
    ("10**200", "number is too large (the limit is 1e100)"),
    ("1e50 ** 30", "would have more than 1000 digits"),
    ("2 ** 0.5", "exponents must be whole numbers"),
    ("0 ** -1", "division by zero"),
    ("(" * 5000 + "1" + ")" * 5000, "expression is too long (max 1000 characters)"),
    ("(" * 60 + "1" + ")" * 60, "too deeply nested (max 50 levels of parentheses)"),
    ("-" * 900 + "1", "expression is too deeply nested"),
    ("1+" * 3_000_000 + "1", "expression is too long (max 1000 characters)"),
    ("1" * 10_000_000, "expression is too long (max 1000 characters)"),
    ("1/0", "division by zero"),
    ("1 // 0", "division by zero"),
    ("1 % 0", "division by zero"),
    ("0/0", "division by zero"),
    ("sqrt(-1)", "square root of a negative number"),
    ("round(1, 1000)", "round(): decimal places must be a whole number from -50 to 50"),
    ("round(1, 0.5)", "round(): decimal places must be a whole number"),
    ("max()", "max() needs at least one argument"),
    ("min()", "min() needs at least one argument"),
    ("max(" + ",".join(["1"] * 101) + ")", "too many arguments (max 100)"),
    ("1e999999", "number is too large (the limit is 1e100)"),
    ("1e100 * 10", "number is too large"),
    ("1 // 1e-999999", "cannot be computed within 50 significant digits"),
    ("", "expression is empty"),
    ("   \n\t", "expression is empty"),
    ("1 +", "could not parse the expression"),
    ("(1", "could not parse the expression near '(1'"),
    ("1 2", "could not parse the expression near '2'"),
    ("1\x00", "could not parse the expression"),
    ("2 @ 3", "operator '@' is not allowed"),
    ("10 @ 100 + 5", "operator '@' is not allowed"),  # the percent marker cannot be typed
]


def _refusal(expression: str) -> BaseException | None:
    try:
        evaluate(expression)
    except BaseException as exc:  # noqa: BLE001 - returned for the test to judge
        return exc
    return None


@pytest.mark.parametrize(("expression", "message"), ATTACKS, ids=lambda v: repr(v)[:40])
def test_refused_quickly_with_clear_message(expression: str, message: str) -> None:
    # The message names the limit that refused it, before anything was computed (an unguarded
    # 9**9**9**9 never finishes). The thread's join is a hang guard, not a speed limit.
    outcome: list[BaseException] = []
    worker = threading.Thread(target=lambda: outcome.append(_refusal(expression)), daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), f"evaluating {expression[:40]!r} hangs"
    assert isinstance(outcome[0], CalculatorError), outcome
    text = str(outcome[0])
    assert message in text
    assert "\n" not in text and "Traceback" not in text and len(text) < 200


def test_calculator_error_is_a_value_error() -> None:
    assert issubclass(CalculatorError, ValueError)
    with pytest.raises(CalculatorError, match="expression must be a string"):
        evaluate(None)  # type: ignore[arg-type]
