"""Tests for answer extraction, normalisation and equivalence (rlvr.text.answers)."""

from __future__ import annotations

import importlib.util

import pytest

from rlvr.text.answers import extract_answer, is_equiv, normalize_answer, verify

HAS_SYMPY = importlib.util.find_spec("sympy") is not None
needs_sympy = pytest.mark.skipif(not HAS_SYMPY, reason="symbolic equivalence needs sympy")

# (completion, reference, expected reward)
VERIFY_CASES = [
    # boxed, including nesting and the last of several
    (r"So the answer is \boxed{42}.", "42", 1.0),
    (r"First \boxed{3}, then corrected: \boxed{\frac{1}{2}}", r"\frac12", 1.0),
    (r"\boxed{\frac{\sqrt{3}}{2}}", r"\dfrac{\sqrt3}{2}", 1.0),
    (r"\boxed{\left( 3, \frac{\pi}{2} \right)}", r"(3,\frac{\pi}{2})", 1.0),
    (r"\boxed{\text{(B)}}", "B", 1.0),
    # phrase and GSM8K markers, last number
    ("Final answer: 18", "18", 1.0),
    ("The answer is $\\frac{3}{4}$.", "0.75", 1.0),
    ("The answer is 18 apples in total.", "18", 1.0),
    ("Janet sells 9 eggs.\n#### 18", "18", 1.0),
    ("She has 5 + 7 = 12 apples left", "12", 1.0),
    # commas, trailing zeros, currency, units, percent, degrees
    (r"\boxed{1,000,000}", "1000000", 1.0),
    (r"\boxed{\$2.50}", "2.5", 1.0),
    (r"\boxed{12 \text{ dollars}}", "12", 1.0),
    (r"\boxed{5\text{ cm}^2}", "5", 1.0),
    (r"\boxed{50\%}", "50", 1.0),
    (r"\boxed{90^\circ}", "90", 1.0),
    (r"\boxed{3.0}", "3", 1.0),
    # fractions, decimals, negatives
    (r"\boxed{0.5}", r"\frac{1}{2}", 1.0),
    (r"\boxed{-\frac{1}{2}}", r"\frac{-1}{2}", 1.0),
    (r"\boxed{-3}", "\u22123", 1.0),
    (r"\boxed{6/8}", r"\frac{3}{4}", 1.0),
    (r"\boxed{.25}", "0.25", 1.0),
    # variables, tuples and sets
    (r"\boxed{x = 3}", "3", 1.0),
    (r"\boxed{\{1, 2\}}", r"\{2,1\}", 1.0),
    # must NOT match
    (r"\boxed{\frac{1}{2}}", "2", 0.0),
    (r"\boxed{10}", "100", 0.0),
    (r"\boxed{3}", "3.1", 0.0),
    (r"\boxed{x+1}", "x-1", 0.0),
    ("I could not solve this.", "0", 0.0),
    (r"\boxed{-5}", "5", 0.0),
    (r"\boxed{0.33}", r"\frac{1}{3}", 0.0),
    (r"\boxed{(1, 2)}", "(2, 1)", 0.0),
    (r"\boxed{[1, 2)}", "[1, 2]", 0.0),
    (r"\boxed{1, 2}", "1, 2, 3", 0.0),
    ("#### 1,000", "1000000", 0.0),
    (r"\boxed{\sqrt{2}}", "2", 0.0),
    (r"\boxed{\frac{3}{4}}", r"\frac{4}{3}", 0.0),
    (r"\boxed{__import__('os')}", "0", 0.0),
]

SYMPY_CASES = [
    (r"\boxed{\frac{1}{\sqrt{2}}}", r"\frac{\sqrt{2}}{2}", 1.0),
    (r"\boxed{2\pi}", "6.283185", 1.0),
    (r"\boxed{3\sqrt{2}}", r"\sqrt{18}", 1.0),
    (r"\boxed{x^2+2x+1}", "(x+1)^2", 1.0),
    (r"\boxed{\sqrt[3]{8}}", "2", 1.0),
    (r"\boxed{y = 2x + 1}", "1 + 2x", 1.0),
    (r"\boxed{\pi}", "3.14", 0.0),
    (r"\boxed{2\sqrt{3}}", r"3\sqrt{2}", 0.0),
]


@pytest.mark.parametrize(("completion", "reference", "expected"), VERIFY_CASES)
def test_verify(completion: str, reference: str, expected: float) -> None:
    assert verify(completion, reference) == expected


@needs_sympy
@pytest.mark.parametrize(("completion", "reference", "expected"), SYMPY_CASES)
def test_verify_symbolic(completion: str, reference: str, expected: float) -> None:
    assert verify(completion, reference) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"We get \boxed{\frac{a}{\sqrt{b^{2}}}} at the end.", r"\frac{a}{\sqrt{b^{2}}}"),
        (r"\boxed{1} then \boxed{2} and an unfinished \boxed{3", "2"),
        (r"the value is \boxed 7", "7"),
        ("**Final Answer:** 17", "17"),
        ("The final answer is\n$12$", "12"),
        ("Natalia sold 48/2 = 24 clips in May.\n#### 72", "72"),
        ("x is 3, y is -4", "-4"),
        ("5-3 is 2", "2"),
        ("To reach the final answer we need 5 more steps, 12 in all", "12"),
        ("no digits here", None),
    ],
)
def test_extract_answer(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (r"\$1,234.50", "1234.5"),
        (r"\dfrac12", r"\frac{1}{2}"),
        (r"\tfrac{3}{4}", r"\frac{3}{4}"),
        (r"\left(1, 2\right)", "(1,2)"),
        (r"10\, \text{cm}", "10"),
        ("x = 3", "3"),
        ("75 percent", "75"),
        ("45\u00b0", "45"),
        (r"\sqrt2", r"\sqrt{2}"),
        (r"2\!\cdot\! 3", r"2\cdot3"),
        ("3/4", r"\frac{3}{4}"),
        (r"\pi r", r"\pi r"),
        (r"\frac{1}{2}h", r"\frac{1}{2}h"),
        ("4 square units", "4"),
    ],
)
def test_normalize_answer(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


def test_is_equiv_missing_and_types() -> None:
    assert not is_equiv(None, "0")
    assert not is_equiv("", "")
    assert is_equiv("7", 7)
    with pytest.raises(TypeError, match="str"):
        is_equiv(["7"], "7")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="decode"):
        verify(b"42", "42")  # type: ignore[arg-type]


def test_unparseable_answers_are_not_equivalent_and_do_not_raise() -> None:
    assert not is_equiv(r"\frac{1}{", "1")
    assert not is_equiv(r"\unknowncommand{3}", "3")
    assert not is_equiv("eval(1)", "1")
    assert not is_equiv("2^{100000}", "3")


def test_reference_given_as_solution_text() -> None:
    assert verify("... so \\boxed{72}", "Natalia sold 48 + 24 = 72 clips.\n#### 72") == 1.0
    assert verify(r"\boxed{5}", r"Hence the answer is $\boxed{5}$.") == 1.0


def test_without_sympy_falls_back_to_strings_and_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    for name in [m for m in sys.modules if m == "sympy" or m.startswith("sympy.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sympy", None)  # makes `import sympy` raise ImportError
    assert is_equiv("0.5", r"\frac{1}{2}")
    assert is_equiv(r"\dfrac{\sqrt{3}}{2}", r"\frac{\sqrt3}{2}")
    assert not is_equiv(r"\frac{1}{\sqrt{2}}", r"\frac{\sqrt{2}}{2}")
    assert not is_equiv("x+1", "x-1")


def test_latex_readers():
    from rlvr.text import latex

    assert latex.normalize_answer is normalize_answer  # the answers module re-exports it
    assert latex.brace_group_end("{a{b}}c", 0) == 6
    assert latex.brace_group_end(r"{a\}b}", 0) == 6  # an escaped brace does not close
    assert latex.brace_group_end("{a{b}", 0) is None
    assert latex.last_boxed(r"\boxed{1} then \boxed{\frac{1}{2}}") == r"\frac{1}{2}"
    assert latex.last_boxed(r"\boxed 7 or \boxed{8") == "7" and latex.last_boxed("no box") is None
    assert latex.brace_arg("  {ab}c", 0) == ("ab", 6)
    assert latex.brace_arg(r"\pi r", 0) == (r"\pi", 3)
    assert latex.brace_arg("xy", 1) == ("y", 2) and latex.brace_arg("^2", 0) is None


@pytest.mark.parametrize(
    "completion, reference, want",
    [
        (r"\boxed{10000}", r"10,\!000", 1.0),  # MATH's thousands with a negative thin space
        (r"\boxed{\begin{pmatrix} 1 \\ 2 \end{pmatrix}}", r"\begin{pmatrix}1\\2\end{pmatrix}", 1.0),
        (
            r"Final Answer: The final answer is $\frac{1}{2}$. I hope it is correct.",
            r"\frac{1}{2}",
            1.0,
        ),  # the Minerva / lm-eval MATH format
        ("The final answer is 5. I hope it is correct.", "5", 1.0),
        ("The answer is 5. This is because 2+3=5.", "5", 1.0),
        ("The answer is 42, since 6*7=42.", "42", 1.0),
        ("The answer is 1,000 dollars.", "1000", 1.0),
        (r"The answer is \boxed{2\frac{1}{4}}.", r"\frac{9}{4}", 1.0),  # a mixed number
        (r"The answer is \boxed{2\frac{1}{4}}.", r"\frac{1}{2}", 0.0),  # not 2 * 1/4
        ("The answer is 2 1/2.", r"\frac{5}{2}", 1.0),
        (r"\boxed{\text{AB}}", r"\text{BA}", 0.0),  # words are not products of letters
        (r"\boxed{\text{east}}", r"\text{seat}", 0.0),
    ],
)
def test_common_benchmark_formats_are_judged_as_a_grader_would(completion, reference, want):
    assert verify(completion, reference) == want
