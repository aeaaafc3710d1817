"""rlvr: the RL side, in floors (imports flow downward only): ``generation`` (the one
generation loop), ``measures`` (pass@k and friends, weight diffs, format shares), ``text``
(answer checking, the reasoning-text labellers, dataset loaders), ``organism`` (the model
organisms and the RL claims) and ``tasks`` (the registry of every task) on top.

Names are imported on first use, so importing a torch-free part (e.g. ``rlvr.tasks`` from
config validation) does not pull in torch.
"""

from __future__ import annotations

from .lazy import lazy_exports

# public name -> submodule that defines it
_EXPORTS = {
    "extract_answer": "text.answers",
    "is_equiv": "text.answers",
    "normalize_answer": "text.latex",
    "verify": "text.answers",
    "Problem": "text.datasets",
    "load_gsm8k_jsonl": "text.datasets",
    "load_math500_jsonl": "text.datasets",
    "FormatShares": "measures.formats",
    "format_shares": "measures.formats",
    "format_shares_from_log": "measures.formats",
    "plot_format_shares": "measures.formats",
    "Crossover": "measures.passk",
    "PassKCurve": "measures.passk",
    "bootstrap_ci": "measures.passk",
    "correct_counts": "measures.passk",
    "cover_at": "measures.passk",
    "coverage_split": "measures.passk",
    "crossover": "measures.passk",
    "majority_at_k": "measures.passk",
    "pass_at_k": "measures.passk",
    "pass_at_k_matrix": "measures.passk",
    "passk_curve": "measures.passk",
    "sampling_efficiency_gap": "measures.passk",
    "DEFAULT_RULES": "text.reasoning",
    "LABELS": "text.reasoning",
    "LabeledSentence": "text.reasoning",
    "Labeller": "text.reasoning",
    "RuleLabeller": "text.reasoning",
    "Sentence": "text.reasoning",
    "label_trace": "text.reasoning",
    "segment_start_label": "text.reasoning",
    "split_sentences": "text.reasoning",
    "think_block": "text.reasoning",
    "LayerUpdate": "measures.weightdiff",
    "MatrixUpdate": "measures.weightdiff",
    "SeedOverlap": "measures.weightdiff",
    "UpdateSparsity": "measures.weightdiff",
    "layer_of": "measures.weightdiff",
    "seed_overlap": "measures.weightdiff",
    "update_rank": "measures.weightdiff",
    "update_sparsity": "measures.weightdiff",
    "Samples": "generation.sampling",
    "sample": "generation.sampling",
    "SamplingParams": "generation.sampling_params",
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
