"""The study's probe routers: a logistic regression on the base's standardised activations
at the steering site (the layer sweep's ``logistic`` probe), fitted on dev traces. ``probe`` learns where the RL model begins each segment
in its own traces; ``base_probe`` learns the ground-truth schedule over the base's traces."""

from __future__ import annotations

import numpy as np

import probes
from probes import Site

from ..hybrid import ProbeRouter
from .inputs import has_schedule

INSIDE = "<inside>"


def _with_inside_spans(traces, tokenizer) -> list[probes.LabeledTrace]:
    """Add an ``INSIDE`` span for every completion token that begins no strategy segment:
    with decision pooling these are the positions where nothing began (the negatives a
    router probe must see: it is asked at every token)."""
    out = []
    for t in traces:
        starts = {s.start for s in t.spans}
        enc = tokenizer(t.text, return_offsets_mapping=True)
        extra = [
            probes.Span(a, b, INSIDE)
            for a, b in enc["offset_mapping"]
            if b > a and a >= t.scored_from and a not in starts and a > 0
        ]
        out.append(probes.LabeledTrace(t.text, [*t.spans, *extra], scored_from=t.scored_from))
    return out


def _schedule_spans(traces, tokenizer, schedule) -> list[probes.LabeledTrace]:
    """Relabel each completion token by the ground-truth schedule of the prefix before it
    (``INSIDE`` where the schedule fires nothing): what a base-only router must predict."""
    out = []
    for t in traces:
        enc = tokenizer(t.text, return_offsets_mapping=True)
        spans = []
        for a, b in enc["offset_mapping"]:
            if b > a and a >= t.scored_from and a > 0:
                spans.append(probes.Span(a, b, schedule(t.text[:a]) or INSIDE))
        out.append(probes.LabeledTrace(t.text, spans, scored_from=t.scored_from))
    return out


def _fit_probe_router(run, traces, site: Site, labels: list[str], model=None):
    table = probes.extract(
        run.model("base"), traces, [site], "decision", rest=False, progress=False
    )
    y = np.array(table.labels)
    present = sorted(set(y.tolist()) & set(labels))
    if not present or len(set(y.tolist())) < 2:
        return None, "its training data holds none of the hybrid labels, or a single class"
    # the layer sweep's logistic probe (standardised features, then a logistic regression)
    clf = probes.make_probe("logistic", run.seed).fit(table.X(site).numpy(), y)
    router = ProbeRouter(
        clf, site, labels={c: (c if c in present else None) for c in clf.classes_}, model=model
    )
    return router, None


def probe_router(run, site: Site, labels: list[str], model=None):
    """A probe on *base* activations at ``site`` for what the *RL* model begins next,
    trained on the RL model's own dev traces."""
    traces = run.dev_traces("rl", run.seed + 3)
    traces = _with_inside_spans(traces, run.model("base").tokenizer)
    return _fit_probe_router(run, traces, site, labels, model)


def base_probe_router(run, site: Site, labels: list[str]):
    """A probe on *base* activations at ``site`` for the ground-truth schedule, trained on
    the *base's* own dev traces: does the base know when, with no RL model at all?"""
    if not has_schedule(run.task):
        return None, "the task has no ground-truth schedule to train it on"
    traces = run.dev_traces("base", run.seed + 5)
    traces = _schedule_spans(traces, run.model("base").tokenizer, run.task.schedule)
    return _fit_probe_router(run, traces, site, labels)
