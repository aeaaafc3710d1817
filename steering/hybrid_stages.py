"""The runner's hybrid stages: ``select`` (dev), ``hybrid`` and ``budget`` (test).

- ``select`` chooses the steering site (among the ``n_sites`` best by probe AUROC for the
  first hybrid label) and the coefficient on the *dev* split, with the RL-model router in
  steer mode; it also fits the probe router: a classifier on the *base* model's
  activations at the chosen site, labelled by where the *RL* model starts each strategy on
  its own dev traces (what the base would need to know to schedule like RL).
- ``hybrid`` runs every router x mode and the controls on the *test* split; accuracy per
  problem over ``n`` samples; recovery against the pass@1 of base and RL from ``passk``.
- ``budget`` sweeps the RL router's confidence threshold: recovery against the share of
  tokens it touches.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import probes
from probes import Site

from .hybrid import HybridDecoder
from .recovery import recovery
from .routers import ModelRouter, ProbeRouter


def _key(run, res: dict) -> list:
    """Cache key shared by the hybrid stages: the run's settings, [hybrid] and [extract], the
    vectors' content and the pass@k samples recovery is measured against."""
    from dataclasses import asdict

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


def _accuracy(run, problems, hres, n: int) -> np.ndarray:
    acc = np.zeros(len(problems))
    for g in hres.generations:
        acc[g.prompt_index] += run.task.verify(problems[g.prompt_index], g.text) > 0.5
    return acc / n


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


def _generate(run, dec: HybridDecoder, problems, n: int, seed: int):
    return dec.generate(
        **run.sampling_kwargs(problems, n, seed),
        batch_size=run.cfg.sampling.batch_size,
        progress=run.progress,
    )


def stage_select(run, res: dict, table) -> dict:
    h = run.cfg.hybrid
    labels = _labels(run, res)
    rows = [r for r in res["sweep"]["rows"] if r["label"] == labels[0]]
    sites = [r["site"] for r in sorted(rows, key=lambda r: -r["auroc"])][: h.n_sites]
    problems = run.problems("dev")
    key = ["select", _key(run, res), labels, sites]

    def compute() -> dict:
        grid = []
        router = ModelRouter(run.model("rl"), run.task.segment_start)
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


INSIDE = "<inside>"


def _with_inside_spans(traces, tokenizer) -> list[probes.LabeledTrace]:
    """Add an ``INSIDE`` span for every completion token that begins no strategy segment.

    With decision pooling these rows are the positions where the model chose *not* to
    start a segment: the negatives a router probe must see (it is asked at every token).
    """
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


def _probe_router(run, res: dict, site: Site, labels: list[str]):
    """A classifier on *base* activations at ``site`` for what the *RL* model does next.

    Trained on the RL model's own dev traces, read through the base model: at every
    completion position, which segment (if any) the RL model began with the next token.
    Classes outside the hybrid labels (and ``INSIDE``) map to "do not fire".
    """
    from sklearn.linear_model import LogisticRegression

    traces = run.dev_traces("rl", run.seed + 3)
    present = sorted({s.label for t in traces for s in t.spans} & set(labels))
    if not traces or not present:
        return None, "the RL model's dev traces use none of the hybrid labels"
    base = run.model("base")
    traces = _with_inside_spans(traces, base.tokenizer)
    table = probes.extract(base, traces, [site], "decision", rest=False, progress=False)
    X = table.X(site).numpy()
    y = np.array(table.labels)
    if len(set(y)) < 2:
        return None, "the probe's training data has a single class"
    clf = LogisticRegression(max_iter=2000, random_state=run.seed).fit(X, y)
    return ProbeRouter(
        clf,
        site,
        labels={c: (c if c in present else None) for c in clf.classes_},
        model=run.model("rl"),
    ), None


def _record(
    name: str,
    router: str,
    mode: str,
    control: str | None,
    acc: np.ndarray,
    out,
    base: np.ndarray,
    rl: np.ndarray,
    n_boot: int,
    seed: int,
) -> dict:
    r: dict[str, Any] = {
        "name": name,
        "router": router,
        "mode": mode,
        "control": control,
        "acc": float(acc.mean()),
        "steered_fraction": float(out.steered_fraction),
        "label_shares": {str(k): v for k, v in out.label_shares.items()},
        "acc_per_problem": acc.tolist(),
    }
    try:
        rec = recovery(acc, base, rl, n_boot=n_boot, seed=seed)
        r.update(recovery=rec.value, recovery_ci=list(rec.ci))
    except ValueError as e:
        r.update(recovery=None, recovery_ci=None, refused=str(e))
    return r


def _test_setup(run, res: dict, table):
    """What the test-split stages share: the dev selection, test problems, base/RL pass@1."""
    sel = res.get("select") or stage_select(run, res, table)
    n_pk = res["passk"]["n"]
    base = np.array(res["passk"]["raw"]["base_correct"]) / n_pk
    rl = np.array(res["passk"]["raw"]["rl_correct"]) / n_pk
    return sel, Site.parse(sel["site"]), run.problems("test"), base, rl


TEST_SEED = 4  # offset of the test-split hybrid draws from the experiment seed


def _measure(run, dec, problems, name, router, mode, control, base, rl):
    """Generate on the test problems, score, and record recovery: (record, output, accuracy)."""
    h = run.cfg.hybrid
    out = _generate(run, dec, problems, h.n, run.seed + TEST_SEED)
    acc = _accuracy(run, problems, out, h.n)
    return _record(name, router, mode, control, acc, out, base, rl, h.n_boot, run.seed), out, acc


def stage_hybrid(run, res: dict, table) -> dict:
    h = run.cfg.hybrid
    sel, site, problems, base, rl = _test_setup(run, res, table)
    coef, labels = sel["coef"], sel["labels"]
    key = ["hybrid", _key(run, res), _sel_key(sel)]

    def compute() -> dict:
        vecs = _vectors(run, res, labels, site)
        runs: list[dict] = []
        examples: list[dict] = []
        probe_note = None
        main_acc = None
        for rname in h.routers:
            if rname == "rl":
                router = ModelRouter(run.model("rl"), run.task.segment_start)
            else:  # "probe" (config validation admits only these two)
                router, probe_note = _probe_router(run, res, site, labels)
                if router is None:
                    continue
            for mode in h.modes:
                dec = HybridDecoder(
                    run.model("base"), router, vecs, mode=mode, coef=coef, labels=labels
                )
                name = f"{rname}/{mode}"
                rec, out, acc = _measure(run, dec, problems, name, rname, mode, None, base, rl)
                runs.append(rec)
                if name == "rl/steer":
                    main_acc = acc
                    examples = _examples(run, problems, out)
                # random timing at the same rate for every router and mode; the vector and
                # token-selection controls for the RL router in steer mode
                ctl = {
                    "random_rate": dict(
                        random_firing=True,
                        firing_rate=out.steered_fraction,
                        label_shares=out.label_shares,
                    ),
                    "random_vector": dict(random_vectors=True, control_seed=run.seed),
                    "bias_only": dict(bias_only=True),
                    "rerank": dict(rerank=True),
                }
                for c in h.controls:
                    if c != "random_rate" and name != "rl/steer":
                        continue
                    if c == "bias_only" and len(labels) < 2:
                        continue  # one label: bias-only is the vector itself
                    cdec = dec.with_controls(**ctl[c])
                    name_c = f"{name} control: {c}"
                    runs.append(_measure(run, cdec, problems, name_c, rname, mode, c, base, rl)[0])
        pass1: dict[str, dict] = {}
        if main_acc is not None:
            from rlvr.passk import bootstrap_ci

            classes = np.array([run.task.cls_of(p) for p in problems])
            for c in ["all", *sorted(set(classes))]:
                m = np.ones(len(classes), bool) if c == "all" else classes == c
                lo, hi = bootstrap_ci(main_acc[m], n_boot=h.n_boot, seed=run.seed)
                pass1[c] = {"mean": float(main_acc[m].mean()), "low": float(lo), "high": float(hi)}
        return {
            "site": site.name,
            "coef": coef,
            "labels": labels,
            "n": h.n,
            "n_problems": len(problems),
            "acc_base": float(base.mean()),
            "acc_rl": float(rl.mean()),
            "runs": runs,
            "pass1": pass1,
            "examples": examples,
            "example_run": "rl/steer",
            "probe_note": probe_note,
        }

    return run.cached("hybrid", key, compute)


def stage_budget(run, res: dict, table) -> dict:
    h = run.cfg.hybrid
    sel, site, problems, base, rl = _test_setup(run, res, table)
    coef, labels = sel["coef"], sel["labels"]
    key = [
        "budget",
        _key(run, res),
        _sel_key(sel),
        sorted(r["name"] for r in res.get("hybrid", {}).get("runs", [])),
    ]

    def compute() -> dict:
        vecs = _vectors(run, res, labels, site)
        pts = []
        done = {r["name"]: r for r in res.get("hybrid", {}).get("runs", [])}
        for mode in h.modes:
            for tau in h.thresholds:
                if tau == 0.0 and f"rl/{mode}" in done:  # the hybrid stage ran exactly this
                    r = {k: v for k, v in done[f"rl/{mode}"].items() if k != "acc_per_problem"}
                    pts.append({**r, "name": f"tau={tau}", "threshold": tau})
                    continue
                router = ModelRouter(run.model("rl"), run.task.segment_start, tau=tau)
                dec = HybridDecoder(
                    run.model("base"), router, vecs, mode=mode, coef=coef, labels=labels
                )
                r = _measure(run, dec, problems, f"tau={tau}", "rl", mode, None, base, rl)[0]
                r["threshold"] = tau
                r.pop("acc_per_problem")
                pts.append(r)
        return {
            "points": [p for p in pts if p.get("recovery") is not None],
            "refused": [p for p in pts if p.get("recovery") is None],
        }

    return run.cached("budget", key, compute)


STAGE_FUNCS = {"select": stage_select, "hybrid": stage_hybrid, "budget": stage_budget}
