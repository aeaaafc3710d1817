"""nnsight and TransformerLens are optional: imported only in their backend module, and a
missing one is named with the extra that installs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import probes

ROOT = Path(__file__).resolve().parent.parent


def test_wrapping_a_plain_model_imports_no_optional_backend(model_dir):
    probe = (
        f"import json, sys, probes; h = probes.wrap({str(model_dir('llama', n_layers=2))!r}); "
        "h.run(**h.encode(['ab'])); "
        "print(json.dumps([p for p in ('nnsight', 'transformer_lens') if p in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, check=True, capture_output=True, text=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize(
    ("backend", "module", "extra"),
    [
        ("nnsight", "nnsight.modeling.transformers", "nnsight"),
        ("transformerlens", "transformer_lens.model_bridge", "transformerlens"),
    ],
)
def test_a_missing_backend_names_its_extra(backend, module, extra, model_dir, monkeypatch):
    hf = probes.wrap(model_dir("llama", n_layers=2))
    monkeypatch.setitem(sys.modules, module, None)  # as if the package were not installed
    with pytest.raises(ImportError, match=rf'pip install "rsteer\[{extra}\]"'):
        probes.wrap(hf.model, hf.tokenizer, backend=backend)
