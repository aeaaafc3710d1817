"""The study's words, in one torch-free module.

Config validation (and so ``rsteer validate`` and ``rsteer --help``) reads these without
importing torch; the modules that do the work import the same constants.

``POOLINGS`` and ``METHODS`` mirror :data:`probes.POOLINGS` and :data:`probes.METHODS`
(``probes`` imports torch at package level); ``tests/test_cli_startup.py`` checks that
they stay equal.
"""

from __future__ import annotations

MODES = ("steer", "handoff")  # how the hybrid acts when its router fires
ROUTERS = ("rl", "probe")  # random timing is the random_rate control of each router
CONTROLS = ("random_rate", "random_vector", "bias_only", "rerank")

POOLINGS = ("decision", "mean", "mean_first_k", "last")  # = probes.extract.POOLINGS
METHODS = ("diffmean", "pca", "logistic")  # = probes.fit.METHODS
SITE_KINDS = ("resid_pre", "resid_post")  # = probes.sites.SITE_KINDS

TASK_KINDS = ("organism", "gsm8k", "math500")  # = rlvr.tasks.TASK_KINDS
BACKENDS = ("hf", "nnsight", "transformerlens")
SAMPLING_BACKENDS = ("hf", "vllm")
TORCH_DTYPES = ("float32", "bfloat16", "float16")
DIFF_DTYPES = ("bf16", "fp16", "fp32")
SWEEP_PROBES = ("diffmean", "logistic")
