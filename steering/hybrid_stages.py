"""The runner's scheduling study: ``select`` (dev), ``hybrid``, ``temperature``, ``budget`` (test).

- ``select`` chooses the steering site (among the ``n_sites`` best by probe AUROC for the
  first hybrid label) and coefficient on the *dev* split, with the RL router in steer
  mode, by hit rate (how often the steered base begins the label the router fired).
- ``hybrid`` runs every router in every mode on the test problems of ``[hybrid] classes``:
  the real routers (``rl``; ``probe``, a probe on the base trained on the RL model's
  decisions; ``base_probe``, a probe on the base trained on the ground-truth schedule), the
  reference schedules (``ground_truth`` — the positive control, also run with the other
  ``exclusive`` setting; ``every_boundary``; ``first_decision`` — the negative control) and
  the controls (``random_timing`` matched per router, ``random_any_position``, and for the
  RL router in steer mode ``random_vector``, ``bias_only``, ``rerank``). Every run records
  its recovery (paired bootstrap CI over problems) and, where the task has a ground-truth
  schedule, the router's precision, recall and AUROC on its own generations.
- ``temperature`` measures base, RL and the hybrids of ``temperature_routers`` over the
  temperature grid: the gap at each temperature, at the base's best, and how much of the
  gain a temperature change alone recovers.
- ``budget`` sweeps the RL router's confidence threshold (handoff): recovery against the
  share of tokens touched.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

import probes
from probes import Site
from rlvr.measures.passk import bootstrap_ci, correct_counts

from .hybrid import (
    AnyPositionRandomRouter,
    EveryBoundaryRouter,
    FirstDecisionRouter,
    GroundTruthRouter,
    HybridDecoder,
    ModelRouter,
    ProbeRouter,
    RouterStack,
    TimingRandomRouter,
    router_quality,
)
from .recovery import recovery, recovery_difference

TEST_SEED = 4  # offset of the test-split hybrid draws from the experiment seed
INSIDE = "<inside>"


# -- shared pieces -------------------------------------------------------------------------


def _key(run, res: dict) -> list:
    """Cache key shared by the hybrid stages: the run's settings, [hybrid] and [extract], the
    vectors' content and the pass@k samples recovery is measured against."""
    pk = res["passk"]["raw"]
    return [
        run.settings_key(),
        asdict(run.cfg.hybrid),
        asdict(run.cfg.extract),
        res["sweep"]["vector_sha"],
        pk["base_correct"],
        pk["rl_correct"],
    ]


def _sel_key(sel: dict) -> dict:
    return {k: v for k, v in sel.items() if k != "seconds"}


def _labels(run, res: dict) -> list[str]:
    have = set(res["sweep"]["vectors"])
    want = run.cfg.hybrid.labels or sorted(have)
    missing = [x for x in want if x not in have]
    if missing:
        raise ValueError(
            f"[hybrid] labels {missing} have no fitted vector (the base's dev traces never "
            f"used them); vectors exist for {sorted(have)}"
        )
    return list(want)


def _vectors(run, res: dict, labels: list[str], site: Site) -> dict[str, probes.SteeringVector]:
    out = {}
    for lab in labels:
        v = probes.SteeringVector.load(res["sweep"]["vectors"][lab], model=run.model("base"))
        out[lab] = probes.SteeringVector(
            {site: v[site]},
            lab,
            v.method,
            v.fingerprint,
            v.pooling,
            v.baseline,
            v.data_hash,
            v.n_examples,
        )
    return out


def _accuracy(run, problems, out, n: int) -> np.ndarray:
    return correct_counts(run.task, problems, out) / n


def _event_prefixes(tok, g):
    """Each firing of a generation with the completion text before the token it chose."""
    for e in g.log:
        yield e, tok.decode(g.token_ids[: e.step], skip_special_tokens=True)


def _hit_rate(run, problems, out) -> float | None:
    """Share of firings after which the emitted token begins the fired label's segment."""
    tok = run.model("base").tokenizer
    hits = total = 0
    for g in out.generations:
        prompt = run.task.prompt(problems[g.prompt_index])
        for e, before in _event_prefixes(tok, g):
            nxt = tok.decode([e.token], skip_special_tokens=True)
            hits += run.task.segment_start(prompt + before, nxt) == e.label
            total += 1
    return hits / total if total else None


def _examples(run, problems, out, k: int = 6) -> list[dict]:
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


def _token_views(run, problems, out, dec: HybridDecoder, k: int = 3) -> list[dict]:
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


def _generate(run, dec: HybridDecoder, problems, n: int, seed: int, temperature=None):
    kw = run.sampling_kwargs(problems, n, seed)
    if temperature is not None:
        kw["params"] = kw["params"].replace(temperature=temperature)
    return dec.generate(**kw, batch_size=run.cfg.sampling.batch_size, progress=run.progress)


def _has_schedule(task) -> bool:
    return callable(getattr(task, "schedule", None))


# -- select (dev) ------------------------------------------------------------------------------


def stage_select(run, res: dict, table) -> dict:
    h = run.cfg.hybrid
    labels = _labels(run, res)
    rows = [r for r in res["sweep"]["rows"] if r["label"] == labels[0]]
    sites = [r["site"] for r in sorted(rows, key=lambda r: -r["auroc"])][: h.n_sites]
    problems = run.problems("dev")
    key = ["select", _key(run, res), labels, sites]

    def compute() -> dict:
        grid = []
        router = ModelRouter(run.model("rl"), run.task.segment_start, labels=labels)
        for site in sites:
            vecs = _vectors(run, res, labels, Site.parse(site))
            for coef in h.coefs:
                dec = HybridDecoder(
                    run.model("base"), router, vecs, mode="steer", coef=coef, labels=labels
                )
                out = _generate(run, dec, problems, h.n, run.seed + 2)
                grid.append(
                    {
                        "site": site,
                        "coef": coef,
                        "acc": float(_accuracy(run, problems, out, h.n).mean()),
                        "hit_rate": _hit_rate(run, problems, out),
                        "steered_fraction": out.steered_fraction,
                    }
                )
        # the site and coefficient that best *implement* the router's decisions (the base
        # most often begins the segment the router fired); dev accuracy breaks ties
        best = max(grid, key=lambda g: (g["hit_rate"] or 0.0, g["acc"], -g["coef"]))
        return {
            "labels": labels,
            "grid": grid,
            "site": best["site"],
            "coef": best["coef"],
            "dev_problems": len(problems),
        }

    return run.cached("select", key, compute)


# -- probe routers ---------------------------------------------------------------------------


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
    from sklearn.linear_model import LogisticRegression

    table = probes.extract(
        run.model("base"), traces, [site], "decision", rest=False, progress=False
    )
    y = np.array(table.labels)
    present = sorted(set(y.tolist()) & set(labels))
    if not present or len(set(y.tolist())) < 2:
        return None, "its training data holds none of the hybrid labels, or a single class"
    clf = LogisticRegression(max_iter=2000, random_state=run.seed).fit(table.X(site).numpy(), y)
    router = ProbeRouter(
        clf, site, labels={c: (c if c in present else None) for c in clf.classes_}, model=model
    )
    return router, None


def _probe_router(run, site: Site, labels: list[str], model=None):
    """A probe on *base* activations at ``site`` for what the *RL* model begins next,
    trained on the RL model's own dev traces."""
    traces = run.dev_traces("rl", run.seed + 3)
    traces = _with_inside_spans(traces, run.model("base").tokenizer)
    return _fit_probe_router(run, traces, site, labels, model)


def _base_probe_router(run, site: Site, labels: list[str]):
    """A probe on *base* activations at ``site`` for the ground-truth schedule, trained on
    the *base's* own dev traces: does the base know when, with no RL model at all?"""
    if not _has_schedule(run.task):
        return None, "the task has no ground-truth schedule to train it on"
    traces = run.dev_traces("base", run.seed + 5)
    traces = _schedule_spans(traces, run.model("base").tokenizer, run.task.schedule)
    return _fit_probe_router(run, traces, site, labels)


# -- the test-split problems and the study's routers ------------------------------------------


def hybrid_problems(run, res: dict) -> tuple[list, np.ndarray, np.ndarray]:
    """The hybrid's test problems (``[hybrid] classes``, ``n_problems`` per class) and the
    per-problem pass@1 of base and RL on them, from the ``passk`` stage."""
    h, pk = run.cfg.hybrid, res["passk"]["raw"]
    n_pk = res["passk"]["n"]
    where = {uid: i for i, uid in enumerate(pk["problems"])}
    problems = run.problems("test")
    classes = h.classes or sorted({run.task.cls_of(p) for p in problems})
    keep, counts = [], dict.fromkeys(classes, 0)
    for p in problems:
        c = run.task.cls_of(p)
        if c in counts and (h.n_problems == 0 or counts[c] < h.n_problems):
            keep.append(p)
            counts[c] += 1
    idx = [where[run.task.uid(p)] for p in keep]
    base = np.array(pk["base_correct"], float)[idx] / n_pk
    rl = np.array(pk["rl_correct"], float)[idx] / n_pk
    return keep, base, rl


class _Study:
    """The routers of one study and how each run is measured (built once per stage)."""

    def __init__(self, run, res: dict, sel: dict):
        self.run, self.res, self.h = run, res, run.cfg.hybrid
        self.labels = sel["labels"]
        self.site = Site.parse(sel["site"])
        self.coef = sel["coef"]
        self.vecs = _vectors(run, res, self.labels, self.site)
        self.problems, self.base, self.rl = hybrid_problems(run, res)
        self.notes: dict[str, str] = {}
        self._routers: dict[str, Any] = {}

    def emit_for(self, router) -> str:
        """The study's emission rule; routers without a model emit the label's token."""
        return self.h.emit if getattr(router, "model", None) is not None else "label"

    def router(self, name: str):
        if name in self._routers:
            return self._routers[name]
        run, task, labels = self.run, self.run.task, self.labels
        needs_model = self.h.emit in ("sample", "argmax")
        rl_router = ModelRouter(run.model("rl"), task.segment_start, labels=labels)
        r, note = None, None
        if name == "rl":
            r = rl_router
        elif name == "probe":
            r, note = _probe_router(
                run, self.site, labels, run.model("rl") if needs_model else None
            )
        elif name == "base_probe":
            r, note = _base_probe_router(run, self.site, labels)
        elif name == "ground_truth":
            r = GroundTruthRouter(task, [x for x in task.schedule_labels if x in labels])
        elif name == "every_boundary":
            every = self.h.every_boundary or labels[:1]
            rest = [x for x in task.schedule_labels if x in labels and x not in every]
            r = RouterStack(GroundTruthRouter(task, rest), EveryBoundaryRouter(task, every))
        elif name == "first_decision":
            r = FirstDecisionRouter(rl_router)
        if r is None:
            self.notes[name] = note or "not available"
        self._routers[name] = r
        return r

    def decoder(self, router, mode: str, **kw) -> HybridDecoder:
        emit = self.emit_for(router) if mode == "handoff" else None
        kw.setdefault("exclusive", self.h.exclusive)
        return HybridDecoder(
            self.run.model("base"),
            router,
            self.vecs if mode == "steer" else None,
            task=self.run.task,
            mode=mode,
            emit=emit,
            coef=self.coef,
            labels=self.labels,
            **kw,
        )

    def measure(self, dec, name, router_name, control=None, temperature=None, base=None, rl=None):
        """Generate on the hybrid problems; record accuracy, recovery and router quality."""
        h, run = self.h, self.run
        n = 1 if temperature == 0 else h.n
        out = _generate(run, dec, self.problems, n, run.seed + TEST_SEED, temperature)
        acc = _accuracy(run, self.problems, out, n)
        base = self.base if base is None else base
        rl = self.rl if rl is None else rl
        rec: dict[str, Any] = {
            "name": name,
            "router": router_name,
            "mode": dec.mode,
            "emit": dec.emit,
            "exclusive": dec.exclusive,
            "control": control,
            "acc": float(acc.mean()),
            "acc_per_problem": acc.tolist(),
            "steered_fraction": float(out.steered_fraction),
            "label_shares": {str(k): v for k, v in out.label_shares.items()},
            "eligible_rates": {str(k): v for k, v in out.eligible_rates.items()},
            "hit_rate": _hit_rate(run, self.problems, out),
            "token_view": _token_views(run, self.problems, out, dec),
        }
        try:
            r = recovery(acc, base, rl, n_boot=h.n_boot, seed=run.seed)
            rec.update(recovery=r.value, recovery_ci=list(r.ci))
        except ValueError as e:
            rec.update(recovery=None, recovery_ci=None, refused=str(e))
        if _has_schedule(run.task):
            q = router_quality(out, n_boot=min(200, h.n_boot), seed=run.seed)
            rec["quality"] = {str(k): v for k, v in q.items()}
        return rec, out


# -- hybrid (test) ---------------------------------------------------------------------------


def _test_selection(run, res: dict, table) -> dict:
    return res.get("select") or stage_select(run, res, table)


def stage_hybrid(run, res: dict, table) -> dict:
    h = run.cfg.hybrid
    sel = _test_selection(run, res, table)
    key = ["hybrid", _key(run, res), _sel_key(sel)]

    def compute() -> dict:
        st = _Study(run, res, sel)
        runs: list[dict] = []
        examples: list[dict] = []
        for rname in h.routers:
            router = st.router(rname)
            if router is None:
                continue
            for mode in h.modes:
                if mode == "steer" and rname in ("every_boundary", "first_decision"):
                    continue  # reference schedules of timing: compared in handoff mode only
                dec = st.decoder(router, mode)
                rec, out = st.measure(dec, f"{rname}/{mode}", rname)
                runs.append(rec)
                if rname == "rl" and mode == h.modes[0]:
                    examples = _examples(run, st.problems, out)
                if rname == "ground_truth" and mode == h.modes[0]:
                    other = st.decoder(router, mode, exclusive=not h.exclusive)
                    tag = "exclusive" if other.exclusive else "non-exclusive"
                    runs.append(st.measure(other, f"{rname}/{mode} ({tag})", rname)[0])
                if rname not in ("rl", "probe", "base_probe"):
                    continue
                for c, cdec in _controls(st, router, dec, rec, rname, mode):
                    name = f"{rname}/{mode} control: {c}"
                    runs.append(st.measure(cdec, name, rname, control=c)[0])
        return {
            "site": st.site.name,
            "coef": st.coef,
            "labels": st.labels,
            "classes": sorted({run.task.cls_of(p) for p in st.problems}),
            "n": h.n,
            "n_problems": len(st.problems),
            "exclusive": h.exclusive,
            "emit": h.emit,
            "acc_base": float(st.base.mean()),
            "acc_rl": float(st.rl.mean()),
            "acc_base_per_problem": st.base.tolist(),
            "acc_rl_per_problem": st.rl.tolist(),
            "has_schedule": _has_schedule(run.task),
            "runs": runs,
            "examples": examples,
            "example_run": f"rl/{h.modes[0]}",
            "notes": st.notes,
        }

    return run.cached("hybrid", key, compute)


def _controls(st: _Study, router, dec: HybridDecoder, rec: dict, rname: str, mode: str):
    """(control name, decoder) pairs for one real router's run."""
    h, run = st.h, st.run
    out = []
    first = mode == h.modes[0]  # the timing controls run in the study's first mode
    for c in h.controls:
        if c == "random_timing" and first:
            rates = {k: v for k, v in rec["eligible_rates"].items() if v > 0}
            if rates:
                ctl = TimingRandomRouter(
                    rates, run.task, seed=run.seed, model=getattr(router, "model", None)
                )
                out.append((c, st.decoder(ctl, mode)))
        elif c == "random_any_position" and rname == "rl" and first:
            shares = rec["label_shares"] or {st.labels[0]: 1.0}
            ctl = AnyPositionRandomRouter(
                rec["steered_fraction"], shares, seed=run.seed, model=getattr(router, "model", None)
            )
            out.append((c, st.decoder(ctl, mode)))
        elif rname == "rl" and mode == "steer" and c in ("random_vector", "bias_only", "rerank"):
            if c == "bias_only" and len(st.labels) < 2:
                continue
            changes = {
                "random_vector": dict(random_vectors=True, control_seed=run.seed),
                "bias_only": dict(bias_only=True),
                "rerank": dict(rerank=True),
            }[c]
            out.append((c, dec.replace(**changes)))
    return out


def timing_comparisons(hy: dict, n_boot: int, seed: int) -> list[dict]:
    """Each real router against its random-timing control, and the ground truth against
    every-boundary, as paired differences of recovery (CI over problems)."""
    base = np.array(hy["acc_base_per_problem"])
    rl = np.array(hy["acc_rl_per_problem"])
    by_name = {r["name"]: r for r in hy["runs"]}
    pairs = []
    for r in hy["runs"]:
        if r.get("control") == "random_timing":
            real = by_name.get(r["name"].split(" control:")[0])
            if real is not None:
                pairs.append((real, r))
    for mode in ("handoff", "steer"):
        a = by_name.get(f"ground_truth/{mode}")
        for b in (
            by_name.get(f"every_boundary/{mode}"),
            next((r for n, r in by_name.items() if n.startswith(f"ground_truth/{mode} (")), None),
        ):
            if a and b:
                pairs.append((a, b))
    out = []
    for a, b in pairs:
        try:
            d, ci = recovery_difference(
                a["acc_per_problem"], b["acc_per_problem"], base, rl, n_boot=n_boot, seed=seed
            )
        except ValueError:
            continue
        out.append({"a": a["name"], "b": b["name"], "difference": d, "ci": list(ci)})
    return out


# -- temperature ------------------------------------------------------------------------------


def stage_temperature(run, res: dict, table) -> dict:
    h = run.cfg.hybrid
    sel = _test_selection(run, res, table)
    key = ["temperature", _key(run, res), _sel_key(sel)]

    def compute() -> dict:
        st = _Study(run, res, sel)
        grid = []
        study_t = run.cfg.sampling.temperature
        for temp in h.temperatures:
            n = 1 if temp == 0 else h.n
            if temp == study_t:
                base, rl = st.base, st.rl  # the passk stage's larger sample
            else:
                kw = run.sampling_kwargs(st.problems, n, run.seed + TEST_SEED)
                kw["params"] = kw["params"].replace(temperature=temp)
                base, rl = (
                    run.score(st.problems, run.sample_with(w, kw)) / n for w in ("base", "rl")
                )
            row: dict[str, Any] = {
                "temperature": temp,
                "n": res["passk"]["n"] if temp == study_t else n,
                "base": float(base.mean()),
                "rl": float(rl.mean()),
                "base_per_problem": base.tolist(),
                "rl_per_problem": rl.tolist(),
                "hybrids": [],
            }
            row["gap"] = float(rl.mean() - base.mean())
            row["gap_ci"] = list(bootstrap_ci(rl - base, n_boot=h.n_boot, seed=run.seed))
            for rname in h.temperature_routers:
                router = st.router(rname)
                if router is None:
                    continue
                dec = st.decoder(router, "handoff")
                rec, _ = st.measure(
                    dec, f"{rname}/handoff", rname, temperature=temp, base=base, rl=rl
                )
                rec.pop("acc_per_problem")
                row["hybrids"].append(rec)
            grid.append(row)
        best = max(grid, key=lambda g: g["base"])
        ref = next((g for g in grid if g["temperature"] == study_t), grid[0])
        t_alone = None
        try:
            r = recovery(
                best["base_per_problem"],
                ref["base_per_problem"],
                ref["rl_per_problem"],
                n_boot=h.n_boot,
                seed=run.seed,
            )
            t_alone = {"value": r.value, "ci": list(r.ci)}
        except ValueError as e:
            t_alone = {"value": None, "ci": None, "refused": str(e)}
        return {
            "grid": grid,
            "study_temperature": study_t,
            "best_temperature": best["temperature"],
            "temperature_alone": t_alone,
            "notes": st.notes,
        }

    return run.cached("temperature", key, compute)


# -- budget -----------------------------------------------------------------------------------


def stage_budget(run, res: dict, table) -> dict:
    h = run.cfg.hybrid
    sel = _test_selection(run, res, table)
    key = ["budget", _key(run, res), _sel_key(sel)]

    def compute() -> dict:
        st = _Study(run, res, sel)
        pts = []
        for tau in h.thresholds:
            router = ModelRouter(run.model("rl"), run.task.segment_start, tau=tau, labels=st.labels)
            rec, _ = st.measure(st.decoder(router, "handoff"), f"tau={tau}", "rl")
            rec["threshold"] = tau
            rec.pop("acc_per_problem")
            pts.append(rec)
        return {
            "points": [p for p in pts if p.get("recovery") is not None],
            "refused": [p for p in pts if p.get("recovery") is None],
        }

    return run.cached("budget", key, compute)


STAGE_FUNCS = {
    "select": stage_select,
    "hybrid": stage_hybrid,
    "temperature": stage_temperature,
    "budget": stage_budget,
}
