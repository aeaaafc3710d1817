"""The RL measurements: pass@k and crossover, weight-update sparsity, format shares.

They work on numbers, samples and checkpoints, and import nothing from the loop, the text
floor or the organism.

* :mod:`.passk` — exact pass@k, bootstrap curves, crossover and coverage;
* :mod:`.weightdiff` — update sparsity, rank and seed overlap between two checkpoints,
  read tensor by tensor through :mod:`.checkpoint_reader`;
* :mod:`.formats` — shares of answer formats over training.
"""
