"""rlvr package."""

from .answers import extract_answer, is_equiv, normalize_answer, verify  # noqa: F401 - re-exports
from .datasets import Problem, load_gsm8k_jsonl, load_math500_jsonl  # noqa: F401 - re-exports
from .formats import (  # noqa: F401 - re-exports
    FormatShares,
    format_shares,
    format_shares_from_log,
    plot_format_shares,
)
from .passk import (  # noqa: F401 - re-exports
    Crossover,
    PassKCurve,
    bootstrap_ci,
    cover_at,
    coverage_split,
    crossover,
    majority_at_k,
    pass_at_k,
    pass_at_k_matrix,
    passk_curve,
    sampling_efficiency_gap,
)
from .reasoning import (  # noqa: F401 - re-exports
    DEFAULT_RULES,
    LABELS,
    LabeledSentence,
    Labeller,
    RuleLabeller,
    Sentence,
    label_trace,
    segment_start_label,
    split_sentences,
    think_block,
)
from .weightdiff import (  # noqa: F401 - re-exports
    LayerUpdate,
    MatrixUpdate,
    SeedOverlap,
    UpdateSparsity,
    layer_of,
    seed_overlap,
    update_rank,
    update_sparsity,
)

# isort: split
from .sampling import Samples, sample  # noqa: F401 - re-exports
