"""The offline rule labeller: ordered regular expressions with a documented precedence.

Semantics (those of the reference annotation of arXiv:2506.18167, see
``data/reasoning/README.md``): hedged reasoning ("maybe", "I think") is still
*deduction*; *uncertainty-estimation* is a statement about one's confidence or the state
of the solution; *backtracking* abandons or revises an earlier step or approach ("Wait"
alone is not enough); *example-testing* tries concrete cases or substitutes a result
back; *adding-knowledge* recalls a definition, formula, fact or theorem; *initializing*
restates the problem or plans the first approach at the start. Every sentence gets one
of the six labels; ``other`` (fillers such as "Hmm." or "**Final Answer**") only with
``allow_other=True``.

Precedence, first match wins:

1. *filler* (only with ``allow_other``): a sentence that is only a filler word -> other;
2. *opening*: the first sentence of a trace, and each later one while every sentence
   before it was initializing (up to ``opening_limit``), is initializing when it restates
   or plans and holds no computation (``OPENING``);
3. the ordered ``rules`` (``DEFAULT_RULES``): explicit backtracking, then uncertainty
   about a check ("let me make sure"), then example-testing, adding-knowledge, the weak
   cues of backtracking ("Alternatively", "Actually"), uncertainty, and "Wait" followed by
   a statement (a revision);
4. *check continuation*: right after an example-testing sentence, a bare computation
   that does not conclude ("Right side: 2(8) + 7 = 23.") is example-testing too;
5. the default, ``deduction``.

It is a heuristic over wording: measure it (``python bench/labeller.py``) on your own
annotated traces before results rest on it, or fit a :class:`~.trained.TrainedLabeller`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .labels import CATEGORIES, LABELS

__all__ = ["DEFAULT_RULES", "FILLER", "OPENING", "RuleLabeller"]


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


_LEAD = r"^(?:(?:but|and|so|oh|ok|okay|hmm+|well|now)[,.]?\s+)*"
_WAIT = r"(?:wait|hold on|hang on)"

FILLER = _rx(
    r"^(?:hmm+|okay|ok|alright|all right|right|yes|yeah|yep|good|great|got it|well|oh|ah|"
    r"let'?s see|let me see|let me think|interesting)[\s.!,\u2026]*$"
    r"|^\**\s*(?:final answer|answer|conclusion|summary)\s*:?\s*\**\s*:?$"
)

OPENING = _rx(
    r"\b(?:i need|we need|need to|want to|have to|asked|asks|asking|the (?:problem|question)|"
    r"we have|i have|"
    r"we want|we need|given|let me|let's|let us|i'?ll|i should|i think|i guess|maybe|"
    r"probably|first|approach|parse|read|set (?:this|it) up|tackle|strategy|plan|"
    r"this (?:is|looks|seems)|it looks|i remember|i recall|formula|method|way to)\b"
    r"|^(?:okay|ok|alright|all right|so|hmm+)\b|^let (?:the|me call|[a-z] )"
)
_COMPUTATION = re.compile(r"=|\d\s*[-+*/\u00d7\u00f7^]\s*\d|\d\s+(?:times|plus|minus)\s+\d")
_CONCLUDES = _rx(
    r"^(?:so|therefore|thus|hence|yes|yep|good|great|perfect|correct|both|same|that|this|"
    r"all|okay|ok|which|it|then|since|because|and so)\b"
)

DEFAULT_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    # Explicit backtracking: an error admitted, a step rejected, an approach abandoned.
    (
        "backtracking",
        _rx(
            _LEAD + _WAIT + r"[,.!]*\s+(?:no\b|that'?s (?:not|wrong|incorrect)|that (?:is|was) "
            r"(?:not|wrong)|i (?:think i )?(?:made|messed|forgot|missed|misread))"
            r"|" + _LEAD + r"no[,.!]+\s+(?:wait|that|it|this)\b"
            r"|\b(?:i (?:made|have made) (?:a|an) (?:mistake|error)|made an? (?:mistake|error)|"
            r"that'?s (?:wrong|not right|incorrect)|(?:that|this|it) (?:was|is) (?:wrong|"
            r"incorrect)|i (?:forgot|missed|misread|miscounted|miscalculated|messed up)|"
            r"scratch that|start over|back to the drawing board|"
            r"let me (?:re-?do|recount|recompute|recalculate|re-?examine|reconsider|rethink|"
            r"re-?read|go back)|(?:try|use|take) (?:a |an )?(?:different|another|other) "
            r"(?:approach|method|way|route))\b"
            r"|\bmy (?:first|initial|earlier) (?:thought|instinct|guess|answer)\b.*\b(?:wrong|"
            r"can'?t be right|mistake)"
        ),
    ),
    # Uncertainty about a check, without the check itself: "Let me make sure ...".
    (
        "uncertainty-estimation",
        _rx(
            _LEAD + r"(?:" + _WAIT + r"[,.!]*\s+)?(?:let me|let's|i (?:should|need to|want to)) "
            r"(?:just |also )?(?:double[- ]?check|make sure|check|verify|re-?check|be careful|"
            r"think (?:about )?(?:if|whether))"
            r"(?![^:=0-9]*\b(?:by|with|using|directly|listing|plugging|substitut\w*|examples?|"
            r"cases?)\b)[^:=0-9]*$"
        ),
    ),
    # Example-testing: checking on concrete cases, substituting back, verifying.
    (
        "example-testing",
        _rx(
            r"\b(?:let me|let's|let us|i'?ll|i can|i could|to) (?:also |quickly |now )?"
            r"(?:double[- ]?check|check|verify|confirm|test|plug|sanity[- ]check|spot[- ]check|"
            r"list|enumerate|count (?:them |it )?directly|add them|try (?:it |this )?(?:with|on|"
            r"for|a (?:small|few|specific|concrete|simple)|some|small|plugging|"
            r"substituting|values? of [a-z]\b|an? example|examples|a case|cases))\b"
            r"|\b(?:let me|let's|let us|i'?ll) (?:now )?try [a-z](?:_\d)?\s*=\s*-?\d"
            r"|^(?:check|checking|verify|verifying|verification|test|testing|sanity check|"
            r"quick check|numerically|listing|directly|partial sums|shoelace|plugging|"
            r"(?:left|right) side)\b"
            r"|\bplug\w* (?:\S+ = \S+ )?(?:back|in|into)\b|\bsubstitut\w* (?:it |this |that )?back\b"
            r"|\b(?:small(?:er)?|simple(?:r)?|specific|concrete) (?:case|example|n|numbers?|"
            r"range|set|values?)\b|\bsanity check\b|\bfor (?:example|instance)\b"
            r"|.+,\s*(?:which|and (?:that|it)|so it) (?:matches|checks out)\b"
        ),
    ),
    # Adding-knowledge: a definition, formula, fact or theorem brought in.
    (
        "adding-knowledge",
        _rx(
            r"\b(?:recall(?:ing)?|remember(?:ing)? that|we know that|i know that|it is (?:well[- ])?"
            r"known|it'?s (?:a )?(?:well[- ])?known|well[- ]known|known (?:result|fact|formula)|"
            r"by definition|is defined as|the definition of|by (?:the )?[\w'-]+(?:'s)?"
            r"(?: [\w'-]+)? (?:theorem|formula|formulas|identity|rule|law|inequality|principle|"
            r"property|algorithm|recurrence|decomposition)|by inclusion-exclusion|"
            r"(?:theorem|identity|formula|rule|law|principle) (?:says|states|tells|gives us))\b"
            r"|\b(?:the|there'?s a|there is a) [\w' -]{0,30}(?:formula|identity|theorem)"
            r"(?: for \w+)? (?:is|says|states)\b|^(?:i could also|we could also|also,?) use the\b"
            r"|^(?:also,? |note that |in general,? )?(?:an?|any|every|each|all|consecutive) (?!\d)"
            r"[a-z][\w-]*(?: [\w-]+){0,6} (?:is|are|has|have|differ|must|equals?|always|never|"
            r"contains?|measures?)\b"
            r"|^(?:in|for) (?:an?|any|every|each|general|independent|real numbers|positive)\b"
            r"|^(?:(?:also|alternatively|note that|in general)[, ]\s*)*the (?:total )?[a-z-]+"
            r"(?: [a-z-]+)? of (?:an?|any|every|n|p|two|the first n|[a-z]\^|[a-z]x)\b[^=]*"
            r"\b(?:is|are|equals)\b"
            r"|\b(?:difference of (?:two )?squares|partial fractions?|binomial theorem|pythagorean|"
            r"vieta|fermat|euclidean algorithm|stars and bars|inclusion-exclusion|legendre|am-gm|"
            r"triangle inequality|quadratic formula|change of base|remainder theorem|"
            r"complementary counting)\b"
            r"|^(?:this|it)(?: is|'s) (?:the|a|an) [\w' -]*(?:series|recurrence|mean|polynomial|"
            r"theorem|formula|identity|sequence|triple)\b"
            r"|\b(?:the )?(?:[a-z]+ )?(?:formula|identity|theorem) (?:for [\w ]+ )?is\b"
        ),
    ),
    # The weak cues of backtracking: switching to another approach or revising the plan.
    (
        "backtracking",
        _rx(
            _LEAD + r"(?:alternatively|instead|on second thought|another (?:way|approach|method)|"
            r"a (?:better|simpler|cleaner|different) (?:way|approach)|actually,?\s+(?!i think)|"
            r"let me try (?:counting|it|this) (?:\w+ )?(?:directly|differently|another way|"
            r"as well))\b"
            r"|\b(?:i should reconsider|reconsider (?:whether|if)|(?:let me|let's) (?:think|try) "
            r"(?:it |this )?(?:again|once more))\b"
        ),
    ),
    # Uncertainty-estimation: statements about one's confidence or the state of the work.
    (
        "uncertainty-estimation",
        _rx(
            r"\b(?:not (?:fully |completely |entirely |quite |very )?(?:sure|certain|confident)|"
            r"unsure|uncertain|i'?m (?:fairly |pretty |quite |very |now )?(?:confident|sure|"
            r"certain)|i (?:was|am) (?:briefly |a bit |slightly )?worried|second-guess\w*|"
            r"i wonder|confus\w+|can'?t be right|doesn'?t (?:seem|look|feel) right|"
            r"(?:seems?|looks?|feels?) (?:off|wrong|suspicious|odd|strange|too \w+|like a lot|"
            r"(?:about |almost )?right|reasonable|plausible|correct|fine|solid|high|low)|"
            r"not a nice number|that'?s (?:a lot|strange|odd|weird|unusual|suspicious)|"
            r"it'?s unusual|makes (?:more )?sense|(?:is|if) (?:this|that|it) (?:is )?(?:right|"
            r"correct))\b"
            r"|^(?:hmm+,?\s+)?i (?:think|believe) (?:that'?s|this is|it'?s) (?:solid|right|"
            r"correct|it|fine)\b"
            r"|\?\s*$"
        ),
    ),
    # "Wait" followed by a statement (not a question or a computation) revises a step.
    ("backtracking", _rx(_LEAD + _WAIT + r"\b(?![^=]*=)")),
)


@dataclass(frozen=True)
class RuleLabeller:
    """Offline labeller: the precedence of the module docstring over ordered regex rules.

    ``rules`` are ``(label, compiled_pattern)`` pairs tried in order (inspect them with
    :meth:`explain`, add some with :meth:`with_rules`). Called on a list of sentences, it
    takes them as one trace in order (the opening and check-continuation stages use the
    position and the previous label); :meth:`label` with ``index=None`` labels a sentence
    with no context. ``default`` is the label when nothing matches.
    """

    rules: tuple[tuple[str, re.Pattern[str]], ...] = DEFAULT_RULES
    default: str = "deduction"
    allow_other: bool = False
    opening_limit: int = 6
    labels: tuple[str, ...] = LABELS

    def __post_init__(self) -> None:
        rules = tuple(self.rules)
        for k, rule in enumerate(rules):
            if not (isinstance(rule, tuple) and len(rule) == 2):
                raise TypeError(
                    f"rule {k} must be a (label, pattern) pair, got {rule!r}; "
                    'write rules as ("backtracking", re.compile(r"^wait\\b", re.I))'
                )
            label, pattern = rule
            if label not in self.labels:
                raise ValueError(
                    f"rule {k} has unknown label {label!r}; use one of {list(self.labels)} "
                    "or pass labels=... with your own label set"
                )
            if not isinstance(pattern, re.Pattern):
                raise TypeError(
                    f"rule {k} ({label}) needs a compiled pattern, got {type(pattern).__name__}; "
                    "wrap it with re.compile(...)"
                )
        if self.default not in self.labels:
            raise ValueError(
                f"default label {self.default!r} is not in {list(self.labels)}; pick one of them"
            )
        if self.default == "other" and not self.allow_other:
            raise ValueError('default="other" needs allow_other=True')
        if not isinstance(self.opening_limit, int) or self.opening_limit < 0:
            raise ValueError(f"opening_limit must be an int >= 0, got {self.opening_limit!r}")
        object.__setattr__(self, "rules", rules)

    def with_rules(
        self, rules: Iterable[tuple[str, re.Pattern[str]]], *, first: bool = True
    ) -> RuleLabeller:
        """A copy with extra rules placed before (``first=True``) or after the current ones."""
        extra = tuple(rules)
        merged = extra + self.rules if first else self.rules + extra
        return RuleLabeller(
            rules=merged,
            default=self.default,
            allow_other=self.allow_other,
            opening_limit=self.opening_limit,
            labels=self.labels,
        )

    def explain(
        self, sentence: str, index: int | None = None, previous: str | None = None
    ) -> tuple[str, str]:
        """The label of ``sentence`` and the stage or pattern that produced it.

        ``index`` is the sentence's position in its trace (None: no context) and
        ``previous`` the label of the sentence before it.
        """
        if not isinstance(sentence, str):
            raise TypeError(f"expected a sentence str, got {type(sentence).__name__}")
        s = sentence.strip()
        if self.allow_other and FILLER.search(s):
            return "other", "filler"
        if index == 0 and "initializing" in self.labels:
            return "initializing", "opening"
        in_opening = (
            index is not None and previous == "initializing" and 0 < index < self.opening_limit
        )
        if (
            in_opening
            and OPENING.search(s)
            and not (_CONCLUDES.search(s) and _COMPUTATION.search(s))
        ):
            return "initializing", "opening"
        for label, pattern in self.rules:
            if pattern.search(s):
                return label, pattern.pattern
        if (
            previous == "example-testing"
            and _COMPUTATION.search(s)
            and not _CONCLUDES.search(s)
            and "example-testing" in self.labels
        ):
            return "example-testing", "check continuation"
        return self.default, "default"

    def label(self, sentence: str, index: int | None = None, previous: str | None = None) -> str:
        """The label of one sentence (see :meth:`explain` for ``index`` and ``previous``)."""
        return self.explain(sentence, index, previous)[0]

    def __call__(self, sentences: list[str]) -> list[str]:
        if isinstance(sentences, str):
            raise TypeError("a labeller takes a list of sentences, got one str; wrap it in [...]")
        out: list[str] = []
        for k, s in enumerate(sentences):
            out.append(self.label(s, k, out[-1] if out else None))
        return out


assert set(CATEGORIES) <= set(LABELS)
