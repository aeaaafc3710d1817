"""The runner's scheduling study: the stages ``select`` (dev), ``hybrid``, ``temperature``
and ``budget`` (test), one concern a module:

- :mod:`.stages` — the four stages (``STAGE_FUNCS``) and the paired timing comparisons;
- :mod:`.study` — :class:`~.study.Study`: the routers of one study, their decoders, and how
  each run is measured (accuracy, recovery, hit rate, router quality, token views);
- :mod:`.inputs` — what the stages read: the cache key, labels, vectors, the test problems
  with the base's and RL's pass@1, one ``generate`` call with the study's settings;
- :mod:`.probe_routers` — the probe routers, fitted on dev traces (``probe``, ``base_probe``);
- :mod:`.views` — what a run's generations show: hit rate, examples, token views.
"""
