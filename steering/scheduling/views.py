"""What a hybrid run's generations show: the hit rate (how often the emitted token begins
the label fired), a few examples with where the router fired, and token-by-token views for
the report's ``tokens.html``."""

from __future__ import annotations

from ..hybrid import HybridDecoder


def _event_prefixes(tok, g):
    """Each firing of a generation with the completion text before the token it chose."""
    for e in g.log:
        yield e, tok.decode(g.token_ids[: e.step], skip_special_tokens=True)


def hit_rate(run, problems, out) -> float | None:
    """Share of firings after which the emitted token begins the fired label's segment.

    The token's text is what it adds to the decoded completion (not the token decoded
    alone, which drops a SentencePiece token's leading space)."""
    tok = run.model("base").tokenizer
    hits = total = 0
    for g in out.generations:
        prompt = run.task.prompt(problems[g.prompt_index])
        for e, before in _event_prefixes(tok, g):
            upto = tok.decode(g.token_ids[: e.step + 1], skip_special_tokens=True)
            nxt = upto[len(before) :]
            hits += run.task.segment_start(prompt + before, nxt) == e.label
            total += 1
    return hits / total if total else None


def run_examples(run, problems, out, k: int = 6) -> list[dict]:
    """A few generations with the character offsets (in the completion) where the router fired."""
    tok = run.model("base").tokenizer
    picked = out.generations[:: max(1, len(out.generations) // k)][:k]
    return [
        {
            "prompt": run.task.prompt(problems[g.prompt_index]),
            "text": g.text,
            "fired": [(len(before), str(e.label)) for e, before in _event_prefixes(tok, g)],
            "correct": run.task.verify(problems[g.prompt_index], g.text) > 0.5,
        }
        for g in picked
    ]


def token_views(run, problems, out, dec: HybridDecoder, k: int = 3) -> list[dict]:
    """The first ``k`` generations token by token, for the report's token view: who wrote
    each token (``base``; ``router`` for a handed-over sample or argmax; ``constrained`` for a
    base token restricted to the fired label), the label fired and the router's score for it."""
    tok = run.model("base").tokenizer
    author = {"sample": "router", "argmax": "router", "label": "constrained"}.get(dec.emit, "base")
    if dec.action == "rerank":
        author = "constrained"
    views = []
    for g in out.generations[:k]:
        fired = {e.step: str(e.label) for e in g.log}
        scores = {st[0]: st[3] for st in g.steps}
        tokens, before = [], ""
        for t in range(g.n_tokens):
            now = tok.decode(g.token_ids[: t + 1], skip_special_tokens=True)
            lab = fired.get(t)
            prob = scores.get(t, {}).get(lab) if lab is not None else None
            tokens.append([now[len(before) :], author if lab else "base", lab, prob])
            before = now
        views.append(
            {
                "prompt": run.task.prompt(problems[g.prompt_index]),
                "correct": bool(run.task.verify(problems[g.prompt_index], g.text) > 0.5),
                "tokens": tokens,
            }
        )
    return views
