"""Symbolic equivalence of two LaTeX answers, with sympy, never through ``eval``.

LaTeX is translated into a restricted expression language (numbers, operators,
single-letter variables and a short list of functions); anything else is rejected before
sympy's parser sees it. sympy is optional: without it nothing is shown equal here.
"""

from __future__ import annotations

import re

from .latex import brace_arg

__all__ = ["sympy_equiv"]


_FUNCS = {
    "sqrt": "sqrt",
    "sin": "sin",
    "cos": "cos",
    "tan": "tan",
    "cot": "cot",
    "sec": "sec",
    "csc": "csc",
    "arcsin": "asin",
    "arccos": "acos",
    "arctan": "atan",
    "ln": "log",
    "log": "log",
    "exp": "exp",
}
_SYMBOLS = {
    "pi": "pi",
    "infty": "oo",
    "cdot": "*",
    "times": "*",
    "div": "/",
    "alpha": "alpha",
    "beta": "beta",
    "gamma": "gamma",
    "theta": "theta",
    "phi": "phi",
}
_ALLOWED_NAMES = frozenset(
    {"sqrt", "pi", "oo", "log", "exp", "binomial", "sin", "cos", "tan", "cot", "sec", "csc"}
    | {"asin", "acos", "atan", "alpha", "beta", "gamma", "theta", "phi"}
)


class _Untranslatable(ValueError):
    """LaTeX that the restricted translator does not handle."""


def _latex_to_expr(s: str) -> str:
    """Translate normalised LaTeX into a restricted sympy-parsable expression string."""
    out: list[str] = []
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == "\\":
            m = re.match(r"\\([A-Za-z]+)", s[i:])
            if not m:
                raise _Untranslatable(s)
            name = m.group(1)
            j = i + m.end()
            if name == "frac" or name == "binom":
                a = brace_arg(s, j)
                b = brace_arg(s, a[1]) if a else None
                if a is None or b is None:
                    raise _Untranslatable(s)
                num, den = _latex_to_expr(a[0]), _latex_to_expr(b[0])
                if name == "frac":
                    out.append(f"(({num})/({den}))")
                else:
                    out.append(f"binomial({num},{den})")
                i = b[1]
            elif name == "sqrt":
                index = None
                if j < len(s) and s[j] == "[":
                    close = s.find("]", j)
                    if close == -1:
                        raise _Untranslatable(s)
                    index = _latex_to_expr(s[j + 1 : close])
                    j = close + 1
                arg = brace_arg(s, j)
                if arg is None:
                    raise _Untranslatable(s)
                body = _latex_to_expr(arg[0])
                out.append(f"(({body})**(1/({index})))" if index else f"sqrt({body})")
                i = arg[1]
            elif name in _FUNCS:
                out.append(f" {_FUNCS[name]}")
                i = j
            elif name in _SYMBOLS:
                out.append(f" {_SYMBOLS[name]} ")
                i = j
            else:
                raise _Untranslatable(s)
        elif ch == "{":
            out.append("(")
            i += 1
        elif ch == "}":
            out.append(")")
            i += 1
        elif ch == "^":
            out.append("**")
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _split_names(expr: str) -> str:
    """Write unknown multi-letter names as products of letters: ``xy`` -> ``x*y``."""

    def repl(m: re.Match[str]) -> str:
        name = m.group(0)
        if name in _ALLOWED_NAMES or not name.isalpha() or len(name) == 1:
            return name
        return "(" + "*".join(name) + ")"

    return re.sub(r"[A-Za-z_][A-Za-z_0-9]*", repl, expr)


def _is_word(expr: str) -> bool:
    """A bare word of two or more letters that is no name sympy is given (e.g. "east")."""
    w = expr.strip()
    return bool(re.fullmatch(r"[A-Za-z]{2,}", w)) and w not in _ALLOWED_NAMES


def _safe_expr(expr: str) -> bool:
    """Whether a translated expression uses only the restricted vocabulary."""
    if len(expr) > 300 or "__" in expr or re.search(r"[^\w\s+\-*/().,=]", expr):
        return False
    for name in re.findall(r"[A-Za-z_][A-Za-z_0-9]*", expr):
        if name not in _ALLOWED_NAMES and not re.fullmatch(r"[A-Za-z](?:_\d+)?", name):
            return False
    for exponent in re.findall(r"\*\*\s*\(?\s*(\d+)", expr):
        if int(exponent) > 1000:
            return False
    return True


def sympy_equiv(a: str, b: str) -> bool:
    """Symbolic equivalence with sympy, or False when sympy is absent or a parse fails."""
    try:
        import sympy
        from sympy.parsing.sympy_parser import (
            convert_xor,
            implicit_multiplication_application,
            parse_expr,
            standard_transformations,
        )
    except ImportError:
        return False
    try:
        ta, tb = _latex_to_expr(a), _latex_to_expr(b)
    except _Untranslatable:
        return False
    if any(_is_word(t) for t in (ta, tb)):  # "AB" is a word, not A*B (nor equal to "BA")
        return False
    ea, eb = _split_names(ta), _split_names(tb)
    if not (_safe_expr(ea) and _safe_expr(eb)):
        return False
    if ea.count("=") != eb.count("=") or ea.count("=") > 1:
        return False
    names = [*"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"]
    names += ["alpha", "beta", "gamma", "theta", "phi"]
    letters = {c: sympy.Symbol(c) for c in names}
    transformations = (*standard_transformations, implicit_multiplication_application, convert_xor)

    def parse(expr: str) -> sympy.Expr:
        if "=" in expr:
            lhs, rhs = expr.split("=")
            return parse(lhs) - parse(rhs)
        return parse_expr(expr, local_dict=dict(letters), transformations=transformations)

    try:
        xa, xb = parse(ea), parse(eb)
        if not (isinstance(xa, sympy.Expr) and isinstance(xb, sympy.Expr)):
            return False
        candidates = [xa - xb]
        if "=" in ea:
            candidates.append(xa + xb)
        for diff in candidates:
            if diff == 0:
                return True
            if not (xa.free_symbols or xb.free_symbols):
                value = complex(sympy.N(diff, 30))
                scale = max(abs(complex(sympy.N(xa, 30))), abs(complex(sympy.N(xb, 30))), 1e-300)
                if abs(value) <= 1e-6 * scale:
                    return True
            elif sympy.simplify(diff) == 0:
                return True
        return False
    except Exception:  # noqa: BLE001 - any parse/simplify failure means "not shown equal"
        return False
