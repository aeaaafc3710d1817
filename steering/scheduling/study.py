"""One scheduling study as the stages run it: :class:`Study` builds the routers and their
decoders once per stage and measures each run (accuracy, recovery, hit rate, router quality,
token views)."""

from __future__ import annotations

from typing import Any

from probes import Site

from ..hybrid import (
    EveryBoundaryRouter,
    FirstDecisionRouter,
    GroundTruthRouter,
    HybridDecoder,
    ModelRouter,
    RouterStack,
    router_quality,
)
from ..recovery import recovery
from .inputs import TEST_SEED, accuracy, generate, has_schedule, hybrid_problems, study_vectors
from .probe_routers import base_probe_router, probe_router
from .views import hit_rate, token_views


class Study:
    """The routers of one study and how each run is measured (built once per stage)."""

    def __init__(self, run, res: dict, sel: dict):
        self.run, self.res, self.h = run, res, run.cfg.hybrid
        self.labels = sel["labels"]
        self.site = Site.parse(sel["site"])
        self.coef = sel["coef"]
        self.vecs = study_vectors(run, res, self.labels, self.site)
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
            r, note = probe_router(run, self.site, labels, run.model("rl") if needs_model else None)
        elif name == "base_probe":
            r, note = base_probe_router(run, self.site, labels)
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
        out = generate(run, dec, self.problems, n, run.seed + TEST_SEED, temperature)
        acc = accuracy(run, self.problems, out, n)
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
            "hit_rate": hit_rate(run, self.problems, out),
            "token_view": token_views(run, self.problems, out, dec),
        }
        try:
            r = recovery(acc, base, rl, n_boot=h.n_boot, seed=run.seed)
            rec.update(recovery=r.value, recovery_ci=list(r.ci))
        except ValueError as e:
            rec.update(recovery=None, recovery_ci=None, refused=str(e))
        if has_schedule(run.task):
            q = router_quality(out, n_boot=min(200, h.n_boot), seed=run.seed)
            rec["quality"] = {str(k): v for k, v in q.items()}
        return rec, out
