"""Reasoning text: final-answer checking, the sentence labellers and the dataset loaders.

* :mod:`.answers` — answer extraction and equivalence (:func:`verify`), on the LaTeX
  normaliser in :mod:`.latex` and the symbolic check in :mod:`.symbolic`;
* :mod:`.reasoning` — sentences, think blocks and strategy labels of a trace;
* :mod:`.labelling` — the rule, trained and LLM labellers, annotated traces, scoring;
* :mod:`.datasets` — GSM8K and MATH-500 loaders.

Only the LLM labeller reaches down into :mod:`rlvr.generation`, to run its labelling model.
"""
