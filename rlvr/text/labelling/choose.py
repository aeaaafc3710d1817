"""A labeller from a config value: ``rule``, a fitted labeller file, or an LLM checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .labels import Labeller

__all__ = ["describe_labeller", "labeller_report", "labeller_spec_error", "load_labeller"]

TRAINED_SUFFIXES = (".joblib", ".pkl")


def labeller_spec_error(spec: str) -> str | None:
    """Why ``spec`` names no labeller (None when it does); checked before anything loads."""
    if not isinstance(spec, str) or not spec:
        return "give 'rule', a fitted labeller file (.joblib) or an LLM checkpoint folder"
    if spec == "rule":
        return None
    path = Path(spec)
    if path.suffix in TRAINED_SUFFIXES:
        return None if path.is_file() else f"no fitted labeller at {spec}"
    if path.is_dir():
        if (path / "config.json").is_file():
            return None
        return f"{spec} is a folder without config.json, so not a model checkpoint"
    return (
        f"{spec!r} is neither 'rule', a fitted labeller file ({', '.join(TRAINED_SUFFIXES)}) "
        "nor an LLM checkpoint folder"
    )


def load_labeller(spec: str, *, cache_dir: str | Path | None = None, **llm: Any) -> Labeller:
    """``"rule"``: :class:`~.rules.RuleLabeller`; a ``.joblib`` file:
    :class:`~.trained.TrainedLabeller`; a checkpoint folder: :class:`~.llm.LLMLabeller`
    (``cache_dir`` and ``llm`` keywords passed on)."""
    problem = labeller_spec_error(spec)
    if problem:
        raise ValueError(f"labeller: {problem}")
    if spec == "rule":
        from .rules import RuleLabeller

        return RuleLabeller()
    if Path(spec).suffix in TRAINED_SUFFIXES:
        from .trained import TrainedLabeller

        return TrainedLabeller.load(spec)
    from .llm import LLMLabeller

    return LLMLabeller(spec, cache_dir=cache_dir, **llm)


def describe_labeller(labeller: Any) -> str:
    """A short name of a labeller for reports: ``rule``, ``trained (...)``, ``llm (...)``."""
    from .llm import LLMLabeller
    from .rules import RuleLabeller
    from .trained import TrainedLabeller

    if labeller is None or isinstance(labeller, RuleLabeller):
        return "rule"
    if isinstance(labeller, TrainedLabeller):
        n = labeller.meta.get("n_sentences")
        return f"trained (logistic regression on {n} annotated sentences)"
    if isinstance(labeller, LLMLabeller):
        return f"llm ({labeller.model_name})"
    return type(labeller).__name__


DEV_TRACES = Path(__file__).resolve().parents[3] / "data" / "reasoning" / "dev_traces.json"


def labeller_report(labeller: Any) -> dict[str, Any]:
    """What a report says about a labeller: its name and measured agreement, if any.

    A trained labeller carries the cross-validated figures of its fit; the rule labeller
    is measured on the held-out split of the project's development set (not your traces);
    an LLM labeller is not measured here (use :func:`~.scoring.evaluate`).
    """
    from .llm import LLMLabeller
    from .rules import RuleLabeller
    from .trained import TrainedLabeller

    name = describe_labeller(labeller)
    if isinstance(labeller, TrainedLabeller) and labeller.cv:
        return {"name": name, "agreement": labeller.cv, "measured_on": "cross-validation by trace"}
    if (labeller is None or isinstance(labeller, RuleLabeller)) and DEV_TRACES.is_file():
        from .scoring import evaluate

        got = evaluate(labeller or RuleLabeller(), DEV_TRACES, split="heldout", n_boot=200)
        where = "the held-out split of data/reasoning/dev_traces.json, not your traces"
        return {"name": name, "agreement": got.as_dict(), "measured_on": where}
    why = "no annotated set; measure it with rlvr.text.labelling.evaluate"
    if isinstance(labeller, LLMLabeller):
        why = "an LLM labeller; measure it with rlvr.text.labelling.evaluate on annotated traces"
    return {"name": name, "agreement": None, "measured_on": why}
