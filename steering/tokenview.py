"""A token view in the browser: who wrote each token, which label fired, how sure the router was.

One self-contained HTML page (inline CSS, no scripts, nothing fetched), one section per
generation: a header (title, prompt, correct or not, tokens per author) and the tokens,
coloured by author, with the label that fired marked above the token and the router's
probability in the token's tooltip (its ``title``). For extraction, the labelled spans of a
set of :class:`probes.LabeledTrace` are underlined, each span's label written at its start.

The input is neutral, so any decoder can feed it::

    from steering.tokenview import TokenView, write_html

    view = TokenView(
        tokens=[("ab", "base", None, None), ("?", "router", "check", 0.93)],
        prompt="abc:12>",
        correct=True,
    )
    write_html([view], "runs/x/tokens.html")

A token is ``(text, author, label_or_None, prob_or_None)`` (or a :class:`Token`, which also
takes ``span``); ``author`` is one of :data:`AUTHORS`: ``base`` (the base model wrote it),
``router`` (the router's token model wrote it, e.g. a handoff), ``constrained`` (forced by a
constraint, e.g. a re-rank among the base's top tokens), or ``prompt``.
"""

from __future__ import annotations

import html
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlvr.checks import probability

__all__ = ["AUTHORS", "Token", "TokenView", "from_traces", "render_html", "write_html"]

AUTHORS = ("prompt", "base", "router", "constrained")
_AUTHOR_COLOURS = {  # background, text
    "prompt": ("#eeeeee", "#666666"),
    "base": ("#ffffff", "#111111"),
    "router": ("#ffb74d", "#111111"),
    "constrained": ("#b39ddb", "#111111"),
}
_SPAN_COLOURS = ("#1e88e5", "#43a047", "#e53935", "#8e24aa", "#fb8c00", "#00897b", "#6d4c41")


@dataclass(frozen=True)
class Token:
    """One token: its text, who wrote it, the label that fired there, the router's probability.

    ``span`` is the label of the extraction span the token lies in (``None`` outside spans).
    """

    text: str
    author: str = "base"
    label: str | None = None
    prob: float | None = None
    span: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"token text must be a str, got {self.text!r}")
        if self.author not in AUTHORS:
            raise ValueError(
                f"unknown token author {self.author!r}: use one of {', '.join(AUTHORS)}"
            )
        for name in ("label", "span"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, str) or not v):
                raise ValueError(f"token {name} must be a non-empty str or None, got {v!r}")
        if self.prob is not None:  # numpy and torch scalars too
            object.__setattr__(self, "prob", probability(self.prob, "token prob"))


@dataclass
class TokenView:
    """One generation: header (title, prompt, correct or not) and its tokens in order."""

    tokens: list[Token]
    prompt: str = ""
    correct: bool | None = None
    title: str = ""
    meta: dict[str, Any] = field(default_factory=dict)  # shown in the header as key: value

    def __post_init__(self) -> None:
        toks = []
        for i, t in enumerate(self.tokens):
            if isinstance(t, Token):
                toks.append(t)
            elif isinstance(t, (tuple, list)) and 1 <= len(t) <= 5:
                toks.append(Token(*t))
            else:
                raise TypeError(
                    f"token {i} is {t!r}: give a Token or a tuple "
                    "(text, author, label_or_None, prob_or_None)"
                )
        self.tokens = toks
        if self.correct is not None and not isinstance(self.correct, bool):
            raise TypeError(f"correct must be True, False or None, got {self.correct!r}")

    def authors(self) -> dict[str, int]:
        """Tokens per author, in :data:`AUTHORS` order."""
        c = Counter(t.author for t in self.tokens)
        return {a: c[a] for a in AUTHORS if c[a]}


def _esc(s: str) -> str:
    return html.escape(s, quote=True)


def _tooltip(t: Token) -> str:
    parts = [f"author: {t.author}"]
    if t.label is not None:
        parts.append(f"fired: {t.label}")
    if t.prob is not None:
        parts.append(f"router p = {t.prob:.3f}")
    if t.span is not None:
        parts.append(f"span: {t.span}")
    parts.append(f"text: {t.text!r}")
    return "\n".join(parts)


def _css(span_labels: Sequence[str]) -> str:
    rules = [
        "body{font-family:system-ui,sans-serif;margin:1.5em;color:#111;background:#fafafa}",
        "h1{font-size:1.3em}",
        ".legend span{margin-right:1em;padding:0 .4em;border:1px solid #ccc}",
        ".gen{background:#fff;border:1px solid #ddd;border-radius:6px;margin:1em 0;"
        "padding:.6em 1em}",
        ".gen h2{font-size:1em;margin:.2em 0}",
        ".prompt{background:#f4f4f4;padding:.3em .5em;white-space:pre-wrap;margin:.3em 0}",
        ".verdict{font-weight:bold;padding:0 .4em;border-radius:3px}",
        ".verdict.correct{background:#c8e6c9}.verdict.wrong{background:#ffcdd2}",
        ".verdict.unknown{background:#eeeeee}",
        ".counts{color:#555;font-size:.9em}",
        ".tokens{font-family:ui-monospace,monospace;white-space:pre-wrap;line-height:2.4;"
        "margin-top:.5em}",
        ".tok{border-radius:2px;padding:1px 0;box-shadow:inset -1px 0 #e0e0e0}",
        ".tok.fired{outline:2px solid #d32f2f}",
        ".tok.fired::before{content:attr(data-label);font-size:.65em;vertical-align:super;"
        "color:#fff;background:#d32f2f;padding:0 2px;margin-right:1px;border-radius:2px}",
        ".tok.span-start::before{content:attr(data-span);font-size:.65em;vertical-align:super;"
        "margin-right:1px;font-weight:bold}",
    ]
    for a, (bg, fg) in _AUTHOR_COLOURS.items():
        rules.append(f".a-{a}{{background:{bg};color:{fg}}}")
    for i, _ in enumerate(span_labels):
        c = _SPAN_COLOURS[i % len(_SPAN_COLOURS)]
        rules.append(f".s-{i}{{border-bottom:3px solid {c}}}.s-{i}.span-start::before{{color:{c}}}")
    return "\n".join(rules)


def render_html(views: Iterable[TokenView], title: str = "rsteer token view") -> str:
    """The page for ``views``, as one string (inline CSS; no scripts, nothing fetched)."""
    views = list(views)
    for i, v in enumerate(views):
        if not isinstance(v, TokenView):
            raise TypeError(f"views[{i}] is a {type(v).__name__}: give TokenView records")
    span_labels = sorted({t.span for v in views for t in v.tokens if t.span is not None})
    span_idx = {s: i for i, s in enumerate(span_labels)}
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_esc(title)}</title>",
        f"<style>\n{_css(span_labels)}\n</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        '<p class="legend">written by: '
        + "".join(f'<span class="a-{a}">{a}</span>' for a in AUTHORS)
        + " &middot; a red box marks a token where the router fired (its label in red before "
        "it; hover a token for the router's probability)"
        + (
            " &middot; spans: "
            + "".join(f'<span class="s-{span_idx[s]}">{_esc(s)}</span>' for s in span_labels)
            if span_labels
            else ""
        )
        + "</p>",
    ]
    for n, v in enumerate(views):
        verdict = {True: "correct", False: "wrong", None: "unknown"}[v.correct]
        counts = ", ".join(f"{k} {c}" for k, c in v.authors().items()) or "no tokens"
        out.append(f'<section class="gen" id="gen-{n}" data-correct="{verdict}">')
        head = _esc(v.title or f"generation {n}")
        out.append(
            f'<h2>{head} <span class="verdict {verdict}">{verdict}</span> '
            f'<span class="counts">{len(v.tokens)} tokens: {_esc(counts)}</span></h2>'
        )
        if v.meta:
            meta = " &middot; ".join(f"{_esc(str(k))}: {_esc(str(x))}" for k, x in v.meta.items())
            out.append(f'<div class="meta">{meta}</div>')
        if v.prompt:
            out.append(f'<div class="prompt">{_esc(v.prompt)}</div>')
        toks = []
        prev_span = None
        for t in v.tokens:
            cls = ["tok", f"a-{t.author}"]
            attrs = [f'data-author="{t.author}"']
            if t.label is not None:
                cls.append("fired")
                attrs.append(f'data-label="{_esc(t.label)}"')
            if t.prob is not None:
                attrs.append(f'data-prob="{t.prob:.6g}"')
            if t.span is not None:
                cls.append(f"s-{span_idx[t.span]}")
                attrs.append(f'data-span="{_esc(t.span)}"')
                if t.span != prev_span:
                    cls.append("span-start")
            prev_span = t.span
            toks.append(
                f'<span class="{" ".join(cls)}" {" ".join(attrs)} '
                f'title="{_esc(_tooltip(t))}">{_esc(t.text)}</span>'
            )
        out.append(f'<div class="tokens">{"".join(toks)}</div>')
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_html(
    views: Iterable[TokenView], path: str | os.PathLike[str], title: str = "rsteer token view"
) -> Path:
    """Write the page to ``path`` (atomically: a crash leaves the old file or none)."""
    text = render_html(views, title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def from_traces(traces: Iterable[Any], tokenizer: Any, *, author: str = "base") -> list[TokenView]:
    """Token views of labelled traces (:class:`probes.LabeledTrace`): spans underlined.

    Tokens come from ``tokenizer`` with the alignment rule of :func:`probes.spans.align`
    (which also places the spans); tokens before ``scored_from`` are the prompt's, the rest
    are ``author``'s (the model the traces were sampled from). A trace's ``meta`` may carry
    ``correct`` (bool) and ``title``; the other entries are shown in the header.
    """
    from probes.spans import align

    if author not in AUTHORS:
        raise ValueError(f"unknown author {author!r}: use one of {', '.join(AUTHORS)}")
    views = []
    for n, trace in enumerate(traces):
        al = align(trace, tokenizer)
        if trace.token_ids is not None:
            texts = [tokenizer.decode([i]) for i in al.input_ids]
        else:
            text = trace.text
            enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=True)
            offsets = [tuple(o) for o in enc["offset_mapping"]]
            texts, prev = [], 0
            for a, b in offsets:
                if b > a:  # the text between tokens (if any) goes with the next token
                    texts.append(text[prev:b])
                    prev = b
                else:  # a special token: covers no text
                    texts.append("")
            if prev < len(text):
                texts[-1] += text[prev:]
        span_of: list[str | None] = [None] * len(texts)
        for s in al.spans:
            for i in range(s.start, s.end):
                if span_of[i] is None:
                    span_of[i] = s.label
        tokens = [
            Token(t, "prompt" if i < al.scored_from else author, None, None, span_of[i])
            for i, t in enumerate(texts)
            if t
        ]
        meta = dict(trace.meta)
        correct = meta.pop("correct", None)
        title = str(meta.pop("title", "")) or f"trace {n}"
        views.append(
            TokenView(
                tokens,
                correct=correct if isinstance(correct, bool) else None,
                title=title,
                meta={"spans": len(trace.spans), **meta},
            )
        )
    return views
