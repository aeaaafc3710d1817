"""The organisms' cards (``README.md``), rendered from ``results.json`` and ``training.json``.

:mod:`.sharpening` renders the first organism's card, :mod:`.when` the "when" organism's;
each puts the sections on the organism itself before those on what RL did
(:mod:`.sharpening_rl`, :mod:`.when_rl`). :mod:`.parts` holds what both are built from.
"""
