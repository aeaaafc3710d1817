"""The scheduling study's stages: ``select`` (dev), ``hybrid``, ``temperature``, ``budget`` (test).

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

from typing import Any

import numpy as np

from probes import Site
from rlvr.measures.passk import bootstrap_ci

from ..hybrid import AnyPositionRandomRouter, HybridDecoder, ModelRouter, TimingRandomRouter
from ..recovery import recovery, recovery_difference
from .inputs import (
    DEV_TEMPERATURE_SEED,
    TEST_SEED,
    accuracy,
    cache_key,
    generate,
    has_schedule,
    selection_key,
    study_labels,
    study_vectors,
)
from .study import Study
from .views import hit_rate, run_examples

# -- select (dev) ------------------------------------------------------------------------------


def stage_select(run, res: dict, table) -> dict:
    h = run.cfg.hybrid
    labels = study_labels(run, res)
    rows = [r for r in res["sweep"]["rows"] if r["label"] == labels[0]]
    sites = [r["site"] for r in sorted(rows, key=lambda r: -r["auroc"])][: h.n_sites]
    problems = run.problems("dev")
    key = ["select", cache_key(run, res), labels, sites]

    def compute() -> dict:
        grid = []
        router = ModelRouter(run.model("rl"), run.task.segment_start, labels=labels)
        for site in sites:
            vecs = study_vectors(run, res, labels, Site.parse(site))
            for coef in h.coefs:
                dec = HybridDecoder(
                    run.model("base"), router, vecs, mode="steer", coef=coef, labels=labels
                )
                out = generate(run, dec, problems, h.n, run.seed + 2)
                grid.append(
                    {
                        "site": site,
                        "coef": coef,
                        "acc": float(accuracy(run, problems, out, h.n).mean()),
                        "hit_rate": hit_rate(run, problems, out),
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


# -- hybrid (test) -----------------------------------------------------------------------------


def _test_selection(run, res: dict, table) -> dict:
    return res.get("select") or stage_select(run, res, table)


def stage_hybrid(run, res: dict, table) -> dict:
    h = run.cfg.hybrid
    sel = _test_selection(run, res, table)
    key = ["hybrid", cache_key(run, res), selection_key(sel)]

    def compute() -> dict:
        st = Study(run, res, sel)
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
                    examples = run_examples(run, st.problems, out)
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
            "has_schedule": has_schedule(run.task),
            "runs": runs,
            "examples": examples,
            "example_run": f"rl/{h.modes[0]}",
            "notes": st.notes,
        }

    return run.cached("hybrid", key, compute)


def _controls(st: Study, router, dec: HybridDecoder, rec: dict, rname: str, mode: str):
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


# -- temperature -------------------------------------------------------------------------------


def stage_temperature(run, res: dict, table) -> dict:
    h = run.cfg.hybrid
    sel = _test_selection(run, res, table)
    dev = run.problems("dev")
    # "dev": the base's best temperature is chosen on the dev problems (chosen on the test
    # problems it is measured on, the max of noisy means would flatter the base)
    key = ["temperature", cache_key(run, res), selection_key(sel), "best on dev", len(dev)]

    def samples_at(temp: float) -> int:
        return 1 if temp == 0 else h.n

    def pass1(which: str, problems, temp: float, seed: int):
        """Per-problem pass@1 of ``which`` at ``temp`` (greedy: one sample)."""
        n = samples_at(temp)
        kw = run.sampling_kwargs(problems, n, seed)
        kw["params"] = kw["params"].replace(temperature=temp)
        return run.score(problems, run.sample_with(which, kw)) / n

    def compute() -> dict:
        st = Study(run, res, sel)
        grid = []
        study_t = run.cfg.sampling.temperature
        dev_seed = run.seed + DEV_TEMPERATURE_SEED
        dev_base = {t: float(pass1("base", dev, t, dev_seed).mean()) for t in h.temperatures}
        for temp in h.temperatures:
            if temp == study_t:
                base, rl = st.base, st.rl  # the passk stage's larger sample
            else:
                base, rl = (
                    pass1(w, st.problems, temp, run.seed + TEST_SEED) for w in ("base", "rl")
                )
            row: dict[str, Any] = {
                "temperature": temp,
                "n": res["passk"]["n"] if temp == study_t else samples_at(temp),
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
        best_t = max(h.temperatures, key=lambda t: dev_base[t])  # the first of equals
        best = next(g for g in grid if g["temperature"] == best_t)
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
            "best_chosen_on": {
                "split": "dev",
                "problems": len(dev),
                "base_pass1": [{"temperature": t, "base": v} for t, v in dev_base.items()],
            },
            "temperature_alone": t_alone,
            "notes": st.notes,
        }

    return run.cached("temperature", key, compute)


# -- budget ------------------------------------------------------------------------------------


def stage_budget(run, res: dict, table) -> dict:
    h = run.cfg.hybrid
    sel = _test_selection(run, res, table)
    key = ["budget", cache_key(run, res), selection_key(sel)]

    def compute() -> dict:
        st = Study(run, res, sel)
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
