"""The token view: a self-contained page, right escaping, authors/labels/spans in the DOM."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest

from steering.tokenview import AUTHORS, Token, TokenView, from_traces, render_html, write_html

TRICKY = ["<b>x</b>", " & ", '"q"', "'s", "&amp;", "\n", "</span>", "<script>alert(1)</script>"]


def _views() -> list[TokenView]:
    gen = [(t, "base", None, None) for t in TRICKY]
    gen += [("?", "router", "check", 0.93), ("z", "constrained", "step", 0.51), ("=", "base")]
    return [
        TokenView(gen, prompt='abc<d> & "e":12>', correct=True, title="problem <1>"),
        TokenView([Token("a", "base")], prompt="p", correct=False),
        TokenView([], prompt="q"),
    ]


class _Page(HTMLParser):
    """Sections, tokens (attributes and exact text), and anything that would load or run."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[dict] = []
        self.tokens: list[dict] = []
        self.external: list[tuple] = []
        self.scripts = 0
        self._in_token = None
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            if key in a:
                self.external.append((tag, key, a[key]))
        if tag == "link":
            self.external.append((tag, a))
        if tag == "section":
            self.sections.append(a)
        if tag == "span" and "tok" in a.get("class", "").split():
            self._in_token = {**a, "text": "", "section": len(self.sections) - 1}
            self.tokens.append(self._in_token)
            self._depth = 0
        elif self._in_token is not None:
            self._depth += 1

    def handle_endtag(self, tag):
        if self._in_token is not None:
            if self._depth == 0:
                self._in_token = None
            else:
                self._depth -= 1

    def handle_data(self, data):
        if self._in_token is not None:
            self._in_token["text"] += data


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    return page


def _check_dom(page: _Page) -> None:
    assert [s["data-correct"] for s in page.sections] == ["correct", "wrong", "unknown"]
    first = [t for t in page.tokens if t["section"] == 0]
    assert [t["text"] for t in first] == [*TRICKY, "?", "z", "="]  # escaped, then read back
    assert [t["data-author"] for t in first] == ["base"] * len(TRICKY) + [
        "router",
        "constrained",
        "base",
    ]
    fired = {t["text"]: t for t in first if "data-label" in t}
    assert set(fired) == {"?", "z"}
    assert fired["?"]["data-label"] == "check" and float(fired["?"]["data-prob"]) == 0.93
    assert "router p = 0.930" in fired["?"]["title"] and "fired: check" in fired["?"]["title"]
    assert "fired" in fired["z"]["class"].split()
    assert all("data-label" not in t for t in page.tokens if t["text"] in TRICKY)
    assert [t["text"] for t in page.tokens if t["section"] == 1] == ["a"]
    assert page.scripts == 0 and page.external == []


def test_page_structure_and_escaping():
    text = render_html(_views(), title="t & <u>")
    _check_dom(_parse(text))
    assert text.count("<section") == 3 and "<title>t &amp; &lt;u&gt;</title>" in text
    assert "<script>" not in text


def test_tokens_as_tuples_or_records_and_bad_ones_refused():
    v = TokenView([("a", "base"), Token("b", "router", "check", np.float32(0.5))])
    assert v.tokens[1].prob == 0.5 and v.authors() == {"base": 1, "router": 1}
    for bad, err in [
        (("a", "rl"), ValueError),
        (("a", "router", "check", 1.5), ValueError),
        (("a", "router", "check", float("nan")), ValueError),
        (("a", "router", "", None), ValueError),
        ((3, "base"), TypeError),
        ("abc", TypeError),
    ]:
        with pytest.raises(err):
            TokenView([bad])
    with pytest.raises(TypeError, match="TokenView records"):
        render_html([{"tokens": []}])
    assert set(AUTHORS) == {"prompt", "base", "router", "constrained"}


def test_write_html_is_atomic_and_complete(tmp_path):
    path = write_html(_views(), tmp_path / "sub" / "tokens.html")
    assert path.read_text(encoding="utf-8") == render_html(_views())
    assert [p.name for p in path.parent.iterdir()] == ["tokens.html"]  # no temporary left


def test_from_traces_marks_prompt_and_spans():
    import probes
    from rlvr.organism.tokenizer import build_tokenizer

    tok = build_tokenizer()
    prompt, completion = "abc:12>", "bcd?cef=cef."
    text = prompt + completion
    spans = [probes.Span(10, 11, "check"), probes.Span(7, 10, "step")]
    trace = probes.LabeledTrace(text, spans, scored_from=len(prompt), meta={"correct": True})
    (view,) = from_traces([trace], tok)
    assert "".join(t.text for t in view.tokens) == text
    assert view.correct is True
    pos = 0
    for t in view.tokens:
        want = next((s.label for s in spans if s.start <= pos < s.end), None)
        assert t.span == want, (t, pos)
        assert t.author == ("prompt" if pos < len(prompt) else "base")
        pos += len(t.text)
    page = _parse(render_html([view]))
    starts = [t for t in page.tokens if "span-start" in t["class"].split()]
    assert [(t["text"], t["data-span"]) for t in starts] == [("b", "step"), ("?", "check")]
    assert [t["data-span"] for t in page.tokens if "data-span" in t] == ["step"] * 3 + ["check"]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.browser
@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed")
def test_page_renders_in_headless_chromium(tmp_path):
    from matplotlib.image import imread

    page = write_html(_views(), tmp_path / "tokens.html")
    base = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1000,700",
    ]
    dom = subprocess.run(
        [*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    _check_dom(_parse(dom.stdout))  # the browser's DOM: same tokens, text and attributes
    shot = tmp_path / "shot.png"
    run = subprocess.run(
        [*base, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120
    )
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    img = (imread(shot)[..., :3] * 255).round().astype(int)
    assert img.shape[:2] == (700, 1000)
    for colour in ("#ffb74d", "#b39ddb", "#d32f2f"):  # router, constrained, fired box
        rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(img - rgb).max(axis=-1) <= 2).sum() > 20, colour
