"""probes: the read side — model handles, sites, labelled spans, extraction, vectors, probes.

Ten lines from a tiny model to a saved vector::

    import probes
    h = probes.wrap("path/to/checkpoint")               # HF, nnsight, TransformerLens or path
    traces = [probes.LabeledTrace("Q: 2+2? Wait, check: 4", [(8, 13, "backtrack")])]
    table = probes.extract(h, traces, sites=[probes.Site(1)], pooling="decision")
    vec = probes.fit_diffmean(table, "backtrack", baseline="rest")
    vec.save("backtrack.safetensors")
    vec2 = probes.SteeringVector.load("backtrack.safetensors", model=h)
"""

from .extract import POOLINGS, REST, ActivationTable, extract
from .fit import METHODS, fit, fit_diffmean, fit_logistic, fit_pca
from .handles import (
    BACKENDS,
    Fingerprint,
    HFHandle,
    ModelHandle,
    NNsightHandle,
    RunOutput,
    TLHandle,
    wrap,
)
from .probe import (
    DiffMeanProbe,
    SmallSampleWarning,
    SweepResult,
    layer_sweep,
    make_probe,
    plot_sweep,
)
from .sites import SITE_KINDS, Site
from .spans import LabeledTrace, Span, align, data_hash, labelled_traces
from .store import ActivationStore, extract_to_store
from .vectors import SteeringVector

__all__ = [
    "BACKENDS",
    "METHODS",
    "POOLINGS",
    "REST",
    "SITE_KINDS",
    "ActivationStore",
    "ActivationTable",
    "DiffMeanProbe",
    "Fingerprint",
    "HFHandle",
    "LabeledTrace",
    "ModelHandle",
    "NNsightHandle",
    "RunOutput",
    "Site",
    "SmallSampleWarning",
    "Span",
    "SteeringVector",
    "SweepResult",
    "TLHandle",
    "align",
    "data_hash",
    "extract",
    "extract_to_store",
    "fit",
    "fit_diffmean",
    "fit_logistic",
    "fit_pca",
    "labelled_traces",
    "layer_sweep",
    "make_probe",
    "plot_sweep",
    "wrap",
]
