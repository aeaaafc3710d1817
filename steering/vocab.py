"""The study's words, defined once (no torch here: config loading imports this module).

``POOLINGS``, ``METHODS``, ``SITE_KINDS``, ``TASK_KINDS`` and ``BACKENDS`` mirror constants
of ``probes`` and ``rlvr`` (which import torch at package level);
``tests/test_cli_startup.py`` checks that they stay equal.

The Python API, the TOML config, the report and the docs use these names.

- *mode* — what a firing does: ``steer`` adds the base model's own vector for the label
  at the deciding position (the base still writes the token); ``handoff`` replaces the
  token by one chosen by the *emission rule*.
- *emission rule* (``emit``, handoff only) — ``sample``: the router model's sample (the
  loop's own uniform); ``argmax``: the router model's most likely token; ``label``: the
  base's own choice restricted to the tokens that begin the fired label (no second model).
- *router* — who decides when: ``rl`` (the RL model's next token), ``probe`` (a probe on
  the base's activations trained on the RL model's decisions), ``base_probe`` (a probe on
  the base's activations trained on the ground-truth schedule: no RL model at all), and
  the reference schedules ``ground_truth``, ``every_boundary``, ``first_decision``.
- *control* — an experimental baseline run beside a router: ``random_timing`` (the same
  labels at the same per-label rate, at positions where each label can begin),
  ``random_any_position`` (the same overall rate at any position: not a timing control),
  ``random_vector``, ``bias_only``, ``rerank`` (steer mode).
- *exclusive* — the schedule is the whole schedule: where the router does not fire a
  scheduled label, the base may not begin it on its own.
"""

MODES = ("steer", "handoff")
EMIT_RULES = ("sample", "argmax", "label")
ROUTERS = ("rl", "probe", "base_probe", "ground_truth", "every_boundary", "first_decision")
REFERENCE_ROUTERS = ("ground_truth", "every_boundary", "first_decision")
CONTROLS = ("random_timing", "random_any_position", "random_vector", "bias_only", "rerank")

# the words of the other config sections (``steering.config`` validates against these)
POOLINGS = ("decision", "mean", "mean_first_k", "last")  # = probes.extract.POOLINGS
METHODS = ("diffmean", "pca", "logistic")  # = probes.fit.METHODS
SITE_KINDS = ("resid_pre", "resid_post")  # = probes.sites.SITE_KINDS
TASK_KINDS = ("organism", "gsm8k", "math500")  # = rlvr.tasks.TASK_KINDS
BACKENDS = ("hf", "nnsight", "transformerlens")  # = probes.handles.BACKENDS
SAMPLING_BACKENDS = ("hf", "vllm")
TORCH_DTYPES = ("float32", "bfloat16", "float16")
DIFF_DTYPES = ("bf16", "fp16", "fp32")
SWEEP_PROBES = ("diffmean", "logistic")
