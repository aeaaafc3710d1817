"""Labelling reasoning sentences: the rule, trained and LLM labellers, annotated traces.

* :mod:`.labels` — the six categories and the sentence records;
* :mod:`.rules` — :class:`RuleLabeller`, the offline rule labeller;
* :mod:`.annotated` — read and write annotated traces (``["label"] sentence
  ["end-section"]``, or JSONL of sentence and label) as character spans;
* :mod:`.scoring` — accuracy, macro-F1, Cohen's kappa and the majority baseline of any
  labeller against annotated traces, with bootstrap CIs over traces;
* :mod:`.trained` — :class:`TrainedLabeller`, a scikit-learn pipeline fitted on annotations;
* :mod:`.llm` — :class:`LLMLabeller`, annotation by a local instruction model;
* :mod:`.choose` — :func:`load_labeller`, a labeller from a config value.

Names are imported lazily, so ``import rlvr.text.labelling`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "CATEGORIES": "labels",
    "LABELS": "labels",
    "LabeledSentence": "labels",
    "Labeller": "labels",
    "Sentence": "labels",
    "DEFAULT_RULES": "rules",
    "RuleLabeller": "rules",
    "AnnotatedTrace": "annotated",
    "AnnotationError": "annotated",
    "format_annotated": "annotated",
    "parse_annotated": "annotated",
    "read_annotated": "annotated",
    "write_annotated": "annotated",
    "Agreement": "scoring",
    "agreement": "scoring",
    "evaluate": "scoring",
    "TrainedLabeller": "trained",
    "LLMLabeller": "llm",
    "build_prompt": "llm",
    "parse_labels": "llm",
    "describe_labeller": "choose",
    "labeller_spec_error": "choose",
    "labeller_report": "choose",
    "LabellingError": "llm",
    "load_labeller": "choose",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'rlvr.text.labelling' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
