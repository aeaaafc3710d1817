"""Answer extraction and equivalence checking for GSM8K- and MATH-style problems.

The checker is the verifiable reward of RLVR experiments, so it errs on the side of
rejecting: a prediction counts as correct only when it matches the reference as a
normalised string, as an exact number (or a float within a relative tolerance of 1e-6),
or, when sympy is importable, as a symbolic expression whose difference simplifies to 0.
Nothing here raises on malformed model output: an unparseable answer is simply not
equivalent.

sympy is optional. Without it, :func:`is_equiv` falls back to string and number
comparison, so expressions such as ``\\frac{\\sqrt{2}}{2}`` vs ``\\frac{1}{\\sqrt{2}}`` are
then judged different.

Model output is never passed to ``eval``: the symbolic check (:mod:`rlvr.text.symbolic`)
translates LaTeX into a restricted expression language and rejects anything else before
sympy's parser sees it.

The normaliser of LaTeX answers (:func:`normalize_answer`) lives in :mod:`rlvr.text.latex` and
is importable from here as well.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from .latex import last_boxed, normalize_answer
from .symbolic import sympy_equiv

__all__ = ["extract_answer", "normalize_answer", "is_equiv", "verify"]

# --------------------------------------------------------------------------- extraction

_FINAL_RE = re.compile(
    r"(?:final\s+answer\s*(?:\*\*)?\s*(?::|is\b)|the\s+(?:final\s+)?answer\s+is\b\s*:?)"
    r"\s*(?:\*\*)?[ \t]*\n?[ \t]*([^\n]+)",
    re.IGNORECASE,
)
_GSM8K_RE = re.compile(r"####\s*([^\n]+)")
_NUMBER_RE = re.compile(r"(?:(?<![\w)\]}])-)?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?")
_LEADING_NUMBER_RE = re.compile(
    r"^(?:\\\$|\$)?\s*-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*\\?%)?"
)
# a first math span "$...$" (escaped dollars inside allowed), and what may follow it: nothing
# but punctuation, or a new sentence ("$\frac{1}{2}$. I hope it is correct.")
_FIRST_MATH_RE = re.compile(r"\$((?:\\\$|[^$])+)\$")
_AFTER_MATH_RE = re.compile(r"[\s.,;!]*|[.,;!]?\s+[A-Z].*", re.DOTALL)


def _clean_phrase_answer(raw: str) -> str:
    """Tidy the text captured after "The answer is" / "Final answer:"."""
    s = raw.strip().strip("*").strip()
    inner = _FINAL_RE.search(s)  # "Final Answer: The final answer is 5": the innermost phrase
    while inner is not None:
        s = inner.group(1).strip().strip("*").strip()
        inner = _FINAL_RE.search(s)
    s = re.sub(r"^\\\[|\\\]$", "", s).strip()
    s = re.sub(r"^\\\(|\\\)\.?$", "", s).strip()
    boxed = last_boxed(s)
    if boxed is not None:
        return boxed.strip()
    math = _FIRST_MATH_RE.match(s)
    if math and _AFTER_MATH_RE.fullmatch(s[math.end() :]):
        return math.group(1).strip()
    s = s.rstrip(" .;!").strip("*").strip()
    # "42 because ...", "42, since ...", "5. I hope ...", "18 apples in total": keep the
    # leading number when prose follows.
    lead = _LEADING_NUMBER_RE.match(s)
    if lead and lead.end() < len(s):
        rest = s[lead.end() :]
        prose = re.match(r"[.,;]?\s+[A-Za-z]{2,}|[.;]\s+[A-Z]", rest)
        if prose and not re.match(r"\s*[=+\-*/^\\]", rest):
            return lead.group(0).strip()
    if len(s) >= 2 and s[0] == "$" and s[-1] == "$":
        s = s.strip("$").strip()
    return s


def extract_answer(text: str) -> str | None:
    """Pull the final answer out of a model completion or a reference solution.

    Tried in order: the last complete ``\\boxed{...}`` (nested braces allowed), the text
    after the last "Final answer:" / "The answer is", the GSM8K marker ``#### 42``, and
    finally the last number in the text. Returns None when none of these is present.
    """
    if not isinstance(text, str):
        raise TypeError(f"extract_answer expects a str, got {type(text).__name__}; pass the text")
    boxed = last_boxed(text)
    if boxed is not None and boxed.strip():
        return boxed.strip()
    finals = list(_FINAL_RE.finditer(text))
    if finals:
        cleaned = _clean_phrase_answer(finals[-1].group(1))
        if cleaned:
            return cleaned
    marks = list(_GSM8K_RE.finditer(text))
    if marks:
        cleaned = marks[-1].group(1).strip()
        if cleaned:
            return cleaned
    numbers = _NUMBER_RE.findall(text)
    return numbers[-1] if numbers else None


# ----------------------------------------------------------------------- equivalence

_NUM_PATTERNS: tuple[tuple[re.Pattern[str], bool], ...] = (
    (re.compile(r"-?\d+"), True),
    (re.compile(r"-?\d*\.\d+"), False),
    (re.compile(r"-?\d+(?:\.\d+)?[eE][-+]?\d+"), False),
)
_FRAC_RE = re.compile(r"(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}")


def _to_number(s: str) -> tuple[Fraction, bool] | None:
    """Parse a plain number; returns (value, exact) where exact means no decimal point."""
    for pattern, exact in _NUM_PATTERNS:
        if pattern.fullmatch(s):
            try:
                return Fraction(s), exact
            except (ValueError, ZeroDivisionError):
                return None
    m = _FRAC_RE.fullmatch(s)
    if m and int(m.group(3)) != 0:
        value = Fraction(int(m.group(2)), int(m.group(3)))
        return (-value if m.group(1) else value), True
    return None


def _split_top_level(s: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(s):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(s[start:i])
            start = i + 1
    parts.append(s[start:])
    return parts


def _as_sequence(s: str) -> tuple[str, str, list[str]] | None:
    """Split a tuple/interval/set/list into (open, close, items), or None for one value."""
    for open_, close in (("\\{", "\\}"), ("(", ")"), ("[", "]"), ("[", ")"), ("(", "]")):
        if s.startswith(open_) and s.endswith(close) and len(s) > len(open_) + len(close):
            inner = s[len(open_) : len(s) - len(close)]
            parts = _split_top_level(inner)
            if len(parts) > 1 or open_ == "\\{":
                depth_ok = all(p.count("(") == p.count(")") for p in parts)
                if depth_ok:
                    return open_, close, parts
    parts = _split_top_level(s)
    if len(parts) > 1:
        return "", "", parts
    return None


def _coerce(value: object, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise TypeError(f"is_equiv got a bool for {name}; pass the answer as a str")
    if isinstance(value, int | float | Fraction):
        return str(value)
    raise TypeError(f"is_equiv expects str or None for {name}, got {type(value).__name__}")


def _equiv_normalised(a: str, b: str, depth: int = 0) -> bool:
    if not a or not b:
        return False
    if a == b:
        return True
    na, nb = _to_number(a), _to_number(b)
    if na is not None and nb is not None:
        (va, exact_a), (vb, exact_b) = na, nb
        if va == vb:
            return True
        if exact_a and exact_b:
            return False
        return math.isclose(float(va), float(vb), rel_tol=1e-6, abs_tol=0.0)
    if depth < 2:
        sa, sb = _as_sequence(a), _as_sequence(b)
        if sa is not None or sb is not None:
            if sa is None or sb is None or sa[:2] != sb[:2] or len(sa[2]) != len(sb[2]):
                return False
            items_a = [normalize_answer(x) for x in sa[2]]
            items_b = [normalize_answer(x) for x in sb[2]]
            if sa[0] in ("", "\\{"):  # bare lists and sets: order does not matter
                remaining = list(items_b)
                for item in items_a:
                    hit = next(
                        (
                            k
                            for k, r in enumerate(remaining)
                            if _equiv_normalised(item, r, depth + 1)
                        ),
                        None,
                    )
                    if hit is None:
                        return False
                    remaining.pop(hit)
                return True
            return all(_equiv_normalised(x, y, depth + 1) for x, y in zip(items_a, items_b))
    return sympy_equiv(a, b)


def is_equiv(pred: str | None, ref: str | None) -> bool:
    """Whether a predicted answer matches a reference answer.

    Compares normalised strings (:func:`normalize_answer`), then numbers (integers and
    fractions exactly via :class:`fractions.Fraction`; anything written with a decimal
    point within a relative tolerance of 1e-6), then tuples/intervals element-wise (sets and
    bare comma lists in any order), then, when sympy is importable, symbolically. A missing
    answer (None or empty) never matches. Never raises on unparseable text.
    """
    p, r = _coerce(pred, "pred"), _coerce(ref, "ref")
    if p is None or r is None:
        return False
    return _equiv_normalised(normalize_answer(p), normalize_answer(r))


def verify(completion: str, reference: str) -> float:
    """Verifiable reward: 1.0 if the completion's extracted answer matches the reference.

    The reference may be a bare answer ("42", "\\frac{1}{2}") or a solution containing
    ``\\boxed{...}`` or a GSM8K ``#### 42`` line, from which the answer is extracted.
    """
    if not isinstance(completion, str):
        raise TypeError(
            f"verify expects the completion as a str, got {type(completion).__name__}; "
            "decode token ids to text first"
        )
    if not isinstance(reference, str):
        raise TypeError(
            f"verify expects the reference as a str, got {type(reference).__name__}; "
            "convert it with str() first"
        )
    if "\\boxed" in reference or "####" in reference:
        reference = extract_answer(reference) or reference
    return 1.0 if is_equiv(extract_answer(completion), reference) else 0.0
