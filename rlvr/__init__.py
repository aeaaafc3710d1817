"""rlvr: the RL side — the one generation loop, pass@k and friends, weight diffs, format
shares, reasoning text, answer checking, dataset loaders and the model organism.

Names are imported on first use, so importing a torch-free part (e.g. ``rlvr.tasks`` from
config validation) does not pull in torch.
"""

from __future__ import annotations

from .lazy import lazy_exports

# public name -> submodule that defines it
_EXPORTS = {
    "extract_answer": "answers",
    "is_equiv": "answers",
    "normalize_answer": "latex",
    "verify": "answers",
    "Problem": "datasets",
    "load_gsm8k_jsonl": "datasets",
    "load_math500_jsonl": "datasets",
    "FormatShares": "formats",
    "format_shares": "formats",
    "format_shares_from_log": "formats",
    "plot_format_shares": "formats",
    "Crossover": "passk",
    "PassKCurve": "passk",
    "bootstrap_ci": "passk",
    "correct_counts": "passk",
    "cover_at": "passk",
    "coverage_split": "passk",
    "crossover": "passk",
    "majority_at_k": "passk",
    "pass_at_k": "passk",
    "pass_at_k_matrix": "passk",
    "passk_curve": "passk",
    "sampling_efficiency_gap": "passk",
    "DEFAULT_RULES": "reasoning",
    "LABELS": "reasoning",
    "LabeledSentence": "reasoning",
    "Labeller": "reasoning",
    "RuleLabeller": "reasoning",
    "Sentence": "reasoning",
    "label_trace": "reasoning",
    "segment_start_label": "reasoning",
    "split_sentences": "reasoning",
    "think_block": "reasoning",
    "LayerUpdate": "weightdiff",
    "MatrixUpdate": "weightdiff",
    "SeedOverlap": "weightdiff",
    "UpdateSparsity": "weightdiff",
    "layer_of": "weightdiff",
    "seed_overlap": "weightdiff",
    "update_rank": "weightdiff",
    "update_sparsity": "weightdiff",
    "Samples": "sampling",
    "sample": "sampling",
    "SamplingParams": "sampling_params",
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
