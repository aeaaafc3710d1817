"""The one generation loop, the floor beneath everything that generates text.

``probes`` (activation reads through a model handle), ``steering`` (steered and hybrid
decoding) and the organism all drive this loop; it imports nothing else from ``rlvr``.

* :mod:`.sampling` — the loop (:func:`sample`, :class:`Samples`);
* :mod:`.sampling_params` — :class:`SamplingParams`, the frozen record of its settings;
* :mod:`.forward` — forward helpers and the plain Hugging Face runner;
* :mod:`.draws` — per-row random streams and token choice;
* :mod:`.controllers` — the plug-ins called at each step;
* :mod:`.detokenize` — incremental text and stop strings;
* :mod:`.kv_cache` — the pre-allocated KV cache for long rows;
* :mod:`.sampling_vllm` — the same contract on vLLM, for large models on a GPU.
"""
