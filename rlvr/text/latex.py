"""LaTeX answers as one canonical string: reading brace groups and ``\\boxed{...}``, and
the normaliser that :mod:`rlvr.text.answers` compares answers by.

:func:`normalize_answer` strips what does not change an answer's value (``$``, ``\\text``,
units, spacing, thousands separators, ...) and writes fractions and roots one way.
:func:`last_boxed`, :func:`brace_group_end` and :func:`brace_arg` read TeX for it and for
the answer checker (extraction, the translation to sympy).
"""

from __future__ import annotations

import re

__all__ = ["brace_arg", "brace_group_end", "last_boxed", "normalize_answer"]

# ------------------------------------------------------------------------ reading TeX

_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BOXED_BARE_RE = re.compile(r"\\boxed\s+([^\s${}]+)")


_THIN = {"\\\\": "\\\\", "\\!": ""}  # a row break stays; a negative thin space is nothing


def brace_group_end(text: str, open_index: int) -> int | None:
    """Index just past the brace group opening at ``text[open_index] == "{"``, or None."""
    depth = 0
    i = open_index
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in "{}":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{...}`` (nested braces allowed), or None."""
    best: tuple[int, str] | None = None
    for match in reversed(list(_BOXED_RE.finditer(text))):
        close = brace_group_end(text, match.end() - 1)
        if close is not None:
            best = (match.start(), text[match.end() : close - 1])
            break
    bare = list(_BOXED_BARE_RE.finditer(text))
    if bare and (best is None or bare[-1].start() > best[0]):
        return bare[-1].group(1)
    return None if best is None else best[1]


def brace_arg(s: str, i: int) -> tuple[str, int] | None:
    """Read one TeX argument at ``s[i:]`` (skipping spaces): ``{...}``, ``\\cmd`` or a char."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        return None
    if s[i] == "{":
        close = brace_group_end(s, i)
        if close is None:
            return None
        return s[i + 1 : close - 1], close
    if s[i] == "\\":
        m = re.match(r"\\[A-Za-z]+", s[i:])
        if m:
            return m.group(0), i + m.end()
        return None
    if s[i] in "}^_":
        return None
    return s[i], i + 1


# ------------------------------------------------------------------------ normalisation

_UNIT_WORDS = (
    "dollars?|cents?|usd|euros?|pounds?|lbs?|ounces?|oz|grams?|kilograms?|kg|mg|tons?|"
    "centimeters?|centimetres?|millimeters?|millimetres?|kilometers?|kilometres?|meters?|"
    "metres?|cm|mm|km|inch(?:es)?|in|feet|foot|ft|yards?|yd|miles?|mi|"
    "hours?|hrs?|minutes?|mins?|seconds?|secs?|days?|weeks?|months?|years?|"
    "liters?|litres?|ml|gallons?|gal|cups?|mph|kph|km/h|degrees?|units?"
)
# Trailing units after a number (or a closing brace); one-letter units need a space: "5 m".
_UNIT_RE = re.compile(
    rf"(?:(?<=[\d}}])\s*(?:square\s+|sq\.?\s*|cubic\s+)?(?:{_UNIT_WORDS})|(?<=\d)\s+[mgshl])"
    r"(?:\s*\^\{?[23]\}?|[\u00b2\u00b3])?\.?$",
    re.IGNORECASE,
)
_TEXT_CMD_RE = re.compile(
    r"\\(?:text|textbf|textit|textrm|textnormal|mathrm|mathbf|mathit|mbox|operatorname)\s*"
    r"\{([^{}]*)\}"
)
_LHS_RE = re.compile(r"^\s*\\?[A-Za-z]+(?:_\{?[A-Za-z0-9]+\}?)?\s*$")
_DECIMAL_RE = re.compile(r"(?<![\d.])(\d+)\.(\d*)(?![\d.])")
_THOUSANDS_RE = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?![\d,])")


def _brace_commands(s: str) -> str:
    """Give ``\\frac`` and ``\\sqrt`` explicit braces: ``\\frac12`` -> ``\\frac{1}{2}``."""
    out: list[str] = []
    i = 0
    while i < len(s):
        m = re.match(r"\\(frac|sqrt)(?![A-Za-z])", s[i:])
        if not m:
            out.append(s[i])
            i += 1
            continue
        name = m.group(1)
        j = i + m.end()
        prefix = "\\" + name
        if name == "sqrt" and j < len(s) and s[j] == "[":
            close = s.find("]", j)
            if close == -1:
                out.append(s[i:])
                break
            prefix += s[j : close + 1]
            j = close + 1
        args: list[str] = []
        for _ in range(2 if name == "frac" else 1):
            arg = brace_arg(s, j)
            if arg is None:
                break
            args.append(_brace_commands(arg[0]))
            j = arg[1]
        if len(args) != (2 if name == "frac" else 1):
            out.append(s[i:])
            break
        out.append(prefix + "".join("{" + a + "}" for a in args))
        i = j
    return "".join(out)


def _strip_whitespace(s: str) -> str:
    """Drop whitespace, keeping one space where it ends a command (``\\pi r``)."""

    def repl(m: re.Match[str]) -> str:
        before = s[max(0, m.start() - 30) : m.start()]
        after = s[m.end() : m.end() + 1]
        if re.search(r"\\[A-Za-z]+$", before) and after.isalpha():
            return " "
        return ""

    return re.sub(r"\s+", repl, s)


def _trim_decimal(m: re.Match[str]) -> str:
    whole, frac = m.group(1), m.group(2).rstrip("0")
    return whole if not frac else f"{whole}.{frac}"


def normalize_answer(s: str) -> str:
    """Canonical string form of an answer, for comparison.

    Strips ``$``/``\\$``, math delimiters, ``\\text{...}`` wrappers (keeping the content),
    ``\\left``/``\\right``, TeX spacing (``\\!``, ``\\,``, ...), degree signs, percent signs,
    trailing unit words ("dollars", "cm", "hours", ...), thousands separators, a leading
    ``x =``, whitespace and trailing periods; rewrites ``\\dfrac``/``\\tfrac`` as ``\\frac``,
    gives ``\\frac``/``\\sqrt`` explicit braces, trims trailing decimal zeros
    ("2.50" -> "2.5", "3.0" -> "3") and turns a plain ``a/b`` into ``\\frac{a}{b}``.
    Percent is dropped, so "50\\%" normalises to "50" (the MATH convention).
    """
    if not isinstance(s, str):
        raise TypeError(f"normalize_answer expects a str, got {type(s).__name__}; pass the text")
    s = s.strip()
    if "\\boxed" in s or "\\fbox" in s:
        inner = last_boxed(s)
        if inner is not None:
            s = inner.strip()
    s = s.replace("\u2212", "-").replace("\u2013", "-").replace("\u00a0", " ")
    s = s.replace("\\$", "").replace("$", "")
    s = re.sub(r"\\[()\[\]]", "", s)
    s = s.replace("\\displaystyle", "")
    s = re.sub(r"\\(?:left|right|big|Big|bigg|Bigg)(?![A-Za-z])", "", s)
    s = re.sub(r"\\(?:qquad|quad)(?![A-Za-z])", " ", s)
    # thin spaces: "\!" (negative) is nothing, e.g. "10,\!000"; the others a space. A row
    # break "\\" is kept whole (its second backslash is not a thin space's).
    s = re.sub(r"\\\\|\\[!,;: ]", lambda m: _THIN.get(m.group(0), " "), s)
    s = s.replace("~", " ")
    s = re.sub(r"\\[dt]frac(?![A-Za-z])", r"\\frac", s)
    prev = None
    while prev != s:
        prev = s
        s = _TEXT_CMD_RE.sub(lambda m: " " + m.group(1) + " ", s)
    s = re.sub(r"\^\s*\{?\s*\\circ\s*\}?", "", s)
    s = re.sub(r"\\(?:circ|degree)(?![A-Za-z])|\u00b0", "", s)
    s = re.sub(r"\\?%|\s+percent\b", "", s, flags=re.IGNORECASE)
    s = s.replace("{,}", ",")
    s = s.strip().rstrip(".").strip()
    prev = None
    while prev != s:
        prev = s
        s = _UNIT_RE.sub("", s).strip()
    if s.count("=") == 1:
        lhs, rhs = s.split("=")
        if _LHS_RE.match(lhs) and rhs.strip():
            s = rhs.strip()
    if not s.startswith(("(", "[")):
        s = _THOUSANDS_RE.sub(lambda m: m.group(0).replace(",", ""), s)
    # "2 1/4", a mixed number written with a space: as "2\frac{1}{4}" (read below)
    s = re.sub(r"^(-?\d+)\s+(\d+)/(\d+)$", r"\1\\frac{\2}{\3}", s)
    s = _strip_whitespace(s)
    s = _brace_commands(s)
    s = re.sub(r"(?<![\d}])\.(\d)", r"0.\1", s)
    s = _DECIMAL_RE.sub(_trim_decimal, s)
    if re.fullmatch(r"\+\d.*", s):
        s = s[1:]
    m = re.fullmatch(r"(-?)(\d+)/(\d+)", s)
    if m:
        s = f"{m.group(1)}\\frac{{{m.group(2)}}}{{{m.group(3)}}}"
    # a mixed number, "2\frac{1}{4}" (or "2 1/4", rewritten so above): 9/4
    m = re.fullmatch(r"(-?)(\d+)\\frac\{(\d+)\}\{(\d+)\}", s)
    if m and int(m.group(4)) > 0:
        whole, num, den = int(m.group(2)), int(m.group(3)), int(m.group(4))
        s = f"{m.group(1)}\\frac{{{whole * den + num}}}{{{den}}}"
    if s.startswith("{") and brace_group_end(s, 0) == len(s):
        s = s[1:-1]
    m = re.fullmatch(r"\(([A-Ea-e])\)", s)
    if m:
        s = m.group(1).upper()
    if s in ("-0", "+0"):
        s = "0"
    return s
