"""What the scheduling study's stages read: the cache key they share, the hybrid labels and
their vectors at the chosen site, the test problems with the base's and RL's pass@1 from the
``passk`` stage, and one ``generate`` call with the study's sampling settings."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

import probes
from probes import Site
from rlvr.measures.passk import correct_counts

from ..hybrid import HybridDecoder

TEST_SEED = 4  # offset of the test-split hybrid draws from the experiment seed
DEV_TEMPERATURE_SEED = 6  # offset of the dev draws that choose the base's best temperature


def cache_key(run, res: dict) -> list:
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


def selection_key(sel: dict) -> dict:
    return {k: v for k, v in sel.items() if k != "seconds"}


def study_labels(run, res: dict) -> list[str]:
    have = set(res["sweep"]["vectors"])
    want = run.cfg.hybrid.labels or sorted(have)
    missing = [x for x in want if x not in have]
    if missing:
        raise ValueError(
            f"[hybrid] labels {missing} have no fitted vector (the base's dev traces never "
            f"used them); vectors exist for {sorted(have)}"
        )
    return list(want)


def study_vectors(
    run, res: dict, labels: list[str], site: Site
) -> dict[str, probes.SteeringVector]:
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


def accuracy(run, problems, out, n: int) -> np.ndarray:
    return correct_counts(run.task, problems, out) / n


def generate(run, dec: HybridDecoder, problems, n: int, seed: int, temperature=None):
    kw = run.sampling_kwargs(problems, n, seed)
    if temperature is not None:
        kw["params"] = kw["params"].replace(temperature=temperature)
    return dec.generate(**kw, batch_size=run.cfg.sampling.batch_size, progress=run.progress)


def has_schedule(task) -> bool:
    return callable(getattr(task, "schedule", None))


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
