"""A trainable labeller: a scikit-learn pipeline fitted on annotated traces.

Features are TF-IDF word 1-2-grams and character 2-5-grams of the sentence, plus two
pieces of context, written into the text as marker words: its position in the trace
(first, early, later) and the first words of the sentence before it. The model is a
logistic regression. :meth:`TrainedLabeller.fit` takes annotated traces (any layout
:func:`~.annotated.read_annotated` reads), prints cross-validated agreement (folds split
by trace, so no trace is in both) and returns the labeller with those figures in
``cv``; :meth:`~TrainedLabeller.save` and :meth:`~TrainedLabeller.load` use joblib (load
only files you trust: joblib files are pickles). A fitted labeller is used wherever the
rule labeller is (``label_trace``, ``MathTask``, ``evaluate``, the ``labeller`` config key).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import FeatureUnion, Pipeline

from .annotated import AnnotatedTrace, read_annotated
from .scoring import Agreement, agreement

__all__ = ["TrainedLabeller"]

FORMAT = "rsteer-trained-labeller"
VERSION = 1
_WORD_RE = re.compile(r"[A-Za-z']+")


def with_context(sentences: Sequence[str]) -> list[str]:
    """The model's input for the sentences of one trace: each sentence followed by marker
    words for its position and the first words of the sentence before it."""
    out = []
    for k, s in enumerate(sentences):
        pos = "zzfirst" if k == 0 else ("zzearly" if k < 4 else "zzlater")
        prev = _WORD_RE.findall(sentences[k - 1])[:3] if k else []
        out.append(" ".join([s, pos, *("zzprev" + w.lower() for w in prev)]))
    return out


def _pipeline(c: float, seed: int) -> Pipeline:
    features = FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)),
            (
                "chars",
                TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
            ),
        ]
    )
    model = LogisticRegression(C=c, max_iter=3000, random_state=seed)
    return Pipeline([("features", features), ("model", model)])


class TrainedLabeller:
    """A fitted text classifier over sentences in trace context (see the module docstring)."""

    def __init__(self, pipeline: Pipeline, cv: Agreement | dict | None = None, meta=None):
        if not hasattr(pipeline, "predict"):
            raise TypeError("TrainedLabeller needs a fitted scikit-learn pipeline")
        self.pipeline = pipeline
        self.cv = cv.as_dict() if isinstance(cv, Agreement) else cv
        self.meta: dict[str, Any] = dict(meta or {})

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(str(x) for x in self.pipeline.classes_)

    @classmethod
    def fit(
        cls,
        data: str | Path | Sequence[AnnotatedTrace],
        *,
        split: str | None = None,
        folds: int = 5,
        c: float = 10.0,
        seed: int = 0,
        n_boot: int = 1000,
        verbose: bool = True,
    ) -> TrainedLabeller:
        """Fit on annotated traces (``split``: only that split), cross-validated first.

        ``folds`` GroupKFold folds by trace (0: no cross-validation); the figures are in
        the returned labeller's ``cv`` and printed when ``verbose``.
        """
        traces = read_annotated(data) if isinstance(data, (str, Path)) else list(data)
        if split is not None:
            traces = [t for t in traces if t.split == split]
        if not traces:
            raise ValueError("no annotated traces to fit on (check the path and split)")
        x, y, groups = [], [], []
        for t in traces:
            x += with_context(t.texts)
            y += t.labels
            groups += [t.id] * len(t.sentences)
        if len(set(y)) < 2:
            raise ValueError(f"need at least two labels to fit, got only {sorted(set(y))}")
        cv = None
        if folds:
            if not 2 <= folds <= len(traces):
                raise ValueError(
                    f"folds={folds} needs between 2 and {len(traces)} (the number of traces); "
                    "pass folds=0 to skip cross-validation"
                )
            pred = cross_val_predict(_pipeline(c, seed), x, y, groups=groups, cv=GroupKFold(folds))
            cv = agreement(y, list(pred), groups=groups, n_boot=n_boot, seed=seed)
            if verbose:
                print(f"TrainedLabeller, {folds}-fold cross-validation by trace:")
                print(cv.summary())
        pipeline = _pipeline(c, seed).fit(x, y)
        meta = {"n_traces": len(traces), "n_sentences": len(y), "c": c, "folds": folds}
        return cls(pipeline, cv, meta)

    def __call__(self, sentences: list[str]) -> list[str]:
        if isinstance(sentences, str):
            raise TypeError("a labeller takes a list of sentences, got one str; wrap it in [...]")
        if not sentences:
            return []
        return [str(x) for x in self.pipeline.predict(with_context(list(sentences)))]

    def predict_proba(self, sentences: list[str]) -> np.ndarray:
        """Class probabilities per sentence, columns in the order of :attr:`labels`."""
        return self.pipeline.predict_proba(with_context(list(sentences)))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "format": FORMAT,
            "version": VERSION,
            "sklearn": sklearn.__version__,
            "pipeline": self.pipeline,
            "cv": self.cv,
            "meta": self.meta,
        }
        joblib.dump(payload, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> TrainedLabeller:
        """Load a labeller saved by :meth:`save` (a joblib pickle: only load trusted files)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found; fit one with TrainedLabeller.fit(...)")
        try:
            payload = joblib.load(path)
        except Exception as err:  # noqa: BLE001 - any unpickling failure means "not ours"
            raise ValueError(f"{path} is not a saved TrainedLabeller ({err})") from err
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError(f"{path} is not a saved TrainedLabeller; save one with .save(path)")
        if payload.get("version") != VERSION:
            raise ValueError(
                f"{path} was saved by format version {payload.get('version')}, this reads "
                f"{VERSION}; refit it"
            )
        return cls(payload["pipeline"], payload.get("cv"), payload.get("meta"))
