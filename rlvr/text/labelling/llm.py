"""An LLM labeller: the paper's annotation procedure, run on a local instruction model.

A prompt gives the six definitions (:data:`INSTRUCTIONS`) and the trace's sentences
numbered ``[1] ...``; the model answers one ``N: label`` line per sentence. The answer
is parsed leniently (``3. Deduction``, ``[3]: "deduction"``, ``3 - adding knowledge``);
sentences whose label is missing or unknown are asked for again once (the whole trace,
with a note naming them), and if the answer is still incomplete the trace is *reported*:
:class:`LabellingError` by default, or with ``on_failure="other"`` the missing ones are
labelled ``other`` and recorded in :attr:`LLMLabeller.failures`. Nothing is guessed
silently.

Generation goes through :func:`rlvr.generation.sampling.sample` (greedy; a model handle, a
transformers model with its tokenizer, or a checkpoint path loaded with transformers) or,
with ``backend="vllm"``, :func:`rlvr.generation.sampling_vllm.sample_vllm`; any
``generate(prompts) -> completions`` callable can be injected instead. Complete answers
are cached on disk by a hash of (model, prompt), the prompt holding the trace, so a
rerun costs nothing. On a real model this needs a GPU; it never downloads anything.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .labels import CATEGORIES
from .rules import RuleLabeller

__all__ = ["INSTRUCTIONS", "LLMLabeller", "LabellingError", "build_prompt", "parse_labels"]

INSTRUCTIONS = """You annotate the reasoning of a model that is solving a math problem.
Give every numbered sentence exactly one of these six labels:
initializing: restates the problem or plans the first approach, at the start.
deduction: a step of reasoning or a computation, including hedged steps ("maybe", "I think").
adding-knowledge: recalls a definition, formula, fact or theorem from outside the problem.
example-testing: tries a concrete case, plugs numbers in, or substitutes a result back to check it.
uncertainty-estimation: a statement about one's own confidence or the state of the solution.
backtracking: abandons or revises an earlier step or approach.
Answer with one line per sentence, in order, in the form "N: label", and nothing else."""

_ALIASES = {
    "init": "initializing",
    "initialization": "initializing",
    "initialize": "initializing",
    "deduce": "deduction",
    "deductive": "deduction",
    "knowledge": "adding-knowledge",
    "adding-knowledge": "adding-knowledge",
    "add-knowledge": "adding-knowledge",
    "example": "example-testing",
    "testing": "example-testing",
    "example-test": "example-testing",
    "uncertainty": "uncertainty-estimation",
    "uncertain": "uncertainty-estimation",
    "backtrack": "backtracking",
}
_LINE_RE = re.compile(
    r"^\W*(?:sentence\s*)?\[?(\d{1,4})\]?\s*[:.)\-=\u2013>]+\s*(.+?)\s*$", re.IGNORECASE
)


class LabellingError(RuntimeError):
    """The model's answer for a trace stayed incomplete after one re-ask."""


def build_prompt(sentences: Sequence[str], *, missing: Sequence[int] = ()) -> str:
    """The annotation prompt for one trace; ``missing`` (1-based) adds a re-ask note."""
    body = "\n".join(f"[{k}] {' '.join(s.split())}" for k, s in enumerate(sentences, start=1))
    note = ""
    if missing:
        ids = ", ".join(str(k) for k in missing)
        note = (
            f"\nYour previous answer had no valid label for sentence(s) {ids}. "
            "Label every sentence again, one line each."
        )
    return f"{INSTRUCTIONS}\n\nSentences:\n{body}\n{note}\nLabels:\n"


def _normalise(raw: str) -> str | None:
    word = raw.strip().strip("*\"'`[](){}.,;").strip().lower()
    word = re.split(r"[\s(]*(?:\(|--|—|because)", word)[0].strip()
    word = re.sub(r"[\s_]+", "-", word)
    if word in CATEGORIES:
        return word
    return _ALIASES.get(word)


def parse_labels(answer: str, n: int) -> tuple[list[str | None], list[str]]:
    """Labels for sentences 1..n from a model's answer, and the problems found.

    A sentence with no line, an unknown label, or two different labels gets ``None``.
    A reasoning model's think block (up to ``</think>``) is skipped.
    """
    answer = answer.rsplit("</think>", 1)[-1]
    found: dict[int, str | None] = {}
    problems: list[str] = []
    for line in answer.splitlines():
        m = _LINE_RE.match(line)
        if not m:
            continue
        k, label = int(m.group(1)), _normalise(m.group(2))
        if not 1 <= k <= n:
            problems.append(f"sentence number {k} is out of range 1..{n}")
            continue
        if label is None:
            problems.append(f"sentence {k}: unknown label {m.group(2)[:40]!r}")
            found.setdefault(k, None)
            continue
        if found.get(k) not in (None, label):
            problems.append(f"sentence {k}: two labels ({found[k]}, {label})")
            found[k] = None
            continue
        found[k] = label
    labels = [found.get(k) for k in range(1, n + 1)]
    problems += [f"sentence {k}: no label" for k in range(1, n + 1) if k not in found]
    return labels, problems


def _default_generate(
    model: Any, tokenizer: Any, backend: str, device: str
) -> Callable[[list[str], int], list[str]]:
    if backend == "vllm":
        if not isinstance(model, str):
            raise ValueError("backend='vllm' needs the model as a checkpoint path or name")

        def run_vllm(prompts: list[str], n_tokens: int) -> list[str]:
            from rlvr.generation.sampling_vllm import sample_vllm

            out = sample_vllm(model, prompts, temperature=0.0, max_new_tokens=n_tokens)
            return list(out.texts)

        return run_vllm
    if backend != "hf":
        raise ValueError(f"unknown backend {backend!r}; use 'hf' or 'vllm'")
    state: dict[str, Any] = {}

    def run_hf(prompts: list[str], n_tokens: int) -> list[str]:
        from rlvr.generation.sampling import sample

        if "model" not in state:
            state["model"], state["tokenizer"] = _load(model, tokenizer, device)
        out = sample(
            state["model"],
            prompts,
            tokenizer=state["tokenizer"],
            temperature=0.0,
            max_new_tokens=n_tokens,
            progress=False,
        )
        return list(out.texts)

    return run_hf


def _load(model: Any, tokenizer: Any, device: str) -> tuple[Any, Any]:
    if not isinstance(model, (str, Path)):
        return model, tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(model)
    if not path.exists():
        raise FileNotFoundError(
            f"no checkpoint at {model}; download the labelling model first (nothing is "
            "downloaded at run time)"
        )
    tok = tokenizer or AutoTokenizer.from_pretrained(path)
    mod = AutoModelForCausalLM.from_pretrained(path).to(device).eval()
    return mod, tok


def _model_name(model: Any) -> str:
    if isinstance(model, (str, Path)):
        return str(model)
    for attr in ("fingerprint", "name_or_path"):
        got = getattr(model, attr, None)
        if got:
            return str(got)
    cfg = getattr(model, "config", None)
    got = getattr(cfg, "_name_or_path", None)
    if got:
        return str(got)
    raise ValueError("cannot name this model for the cache: pass model_name=...")


@dataclass
class Failure:
    """A trace whose answer stayed incomplete: the 1-based sentence numbers and problems."""

    sentences: list[int]
    problems: list[str]
    answer: str


class LLMLabeller:
    """Label sentences by prompting a local model (see the module docstring)."""

    token_labeller = RuleLabeller()
    """Used by ``MathTask.segment_start`` for single tokens, where an LLM call is too costly."""

    def __init__(
        self,
        model: Any,
        *,
        tokenizer: Any = None,
        generate: Callable[[list[str], int], list[str]] | None = None,
        backend: str = "hf",
        cache_dir: str | Path | None = None,
        model_name: str | None = None,
        chat_template: bool = True,
        on_failure: str = "raise",
        tokens_per_sentence: int = 12,
        device: str = "cpu",
    ) -> None:
        if on_failure not in ("raise", "other"):
            raise ValueError(f"on_failure must be 'raise' or 'other', got {on_failure!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.model_name = model_name or _model_name(model)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.chat_template = chat_template
        self.on_failure = on_failure
        self.tokens_per_sentence = tokens_per_sentence
        self._generate = generate or _default_generate(model, tokenizer, backend, device)
        self.failures: list[Failure] = []
        self.calls = 0

    # -- prompts and the cache -------------------------------------------------------
    def _wrap(self, prompt: str) -> str:
        tok = self.tokenizer
        if tok is None and hasattr(self.model, "tokenizer"):
            tok = self.model.tokenizer
        if self.chat_template and tok is not None and getattr(tok, "chat_template", None):
            messages = [{"role": "user", "content": prompt}]
            return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return prompt

    def _key(self, prompt: str) -> str:
        blob = json.dumps([self.model_name, prompt], ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def _cached(self, prompt: str) -> list[str] | None:
        if self.cache_dir is None:
            return None
        path = self.cache_dir / f"{self._key(prompt)}.json"
        if not path.is_file():
            return None
        try:
            labels = json.loads(path.read_text(encoding="utf-8"))["labels"]
        except (json.JSONDecodeError, KeyError, TypeError):
            return None  # a damaged entry is recomputed and overwritten
        return labels if all(x in CATEGORIES for x in labels) else None

    def _store(self, prompt: str, labels: list[str], answers: list[str]) -> None:
        if self.cache_dir is None:
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        path = self.cache_dir / f"{self._key(prompt)}.json"
        tmp = path.with_suffix(".tmp")
        entry = {"model": self.model_name, "labels": labels, "answers": answers}
        tmp.write_text(json.dumps(entry, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)

    def _ask(self, prompts: list[str], n_sentences: list[int]) -> list[str]:
        budget = 16 + self.tokens_per_sentence * max(n_sentences)
        out = self._generate([self._wrap(p) for p in prompts], budget)
        self.calls += 1
        if isinstance(out, str) or len(out) != len(prompts):
            raise ValueError(
                f"generate returned {len(out)} answers for {len(prompts)} prompts; "
                "it must return one completion per prompt"
            )
        return list(out)

    # -- labelling -------------------------------------------------------------------
    def label_traces(self, traces: Sequence[Sequence[str]]) -> list[list[str]]:
        """Labels for several traces (each a list of sentences), batched per round."""
        traces = [list(t) for t in traces]
        prompts = [build_prompt(t) for t in traces]
        result: list[list[str] | None] = [
            [] if not t else self._cached(p) for t, p in zip(traces, prompts)
        ]
        todo = [i for i, r in enumerate(result) if r is None]
        if not todo:
            return [list(r or []) for r in result]
        answers = self._ask([prompts[i] for i in todo], [len(traces[i]) for i in todo])
        parsed = {i: parse_labels(a, len(traces[i])) for i, a in zip(todo, answers)}
        raw = {i: [a] for i, a in zip(todo, answers)}
        again = [i for i in todo if any(x is None for x in parsed[i][0])]
        if again:
            missing = {i: [k + 1 for k, x in enumerate(parsed[i][0]) if x is None] for i in again}
            reask = [build_prompt(traces[i], missing=missing[i]) for i in again]
            second = self._ask(reask, [len(traces[i]) for i in again])
            for i, answer in zip(again, second):
                raw[i].append(answer)
                labels2, problems2 = parse_labels(answer, len(traces[i]))
                merged = [a if a is not None else b for a, b in zip(parsed[i][0], labels2)]
                parsed[i] = (merged, problems2)
        for i in todo:
            labels, problems = parsed[i]
            if any(x is None for x in labels):
                bad = [k + 1 for k, x in enumerate(labels) if x is None]
                failure = Failure(bad, problems, raw[i][-1])
                if self.on_failure == "raise":
                    raise LabellingError(
                        f"trace {i} of this call: no valid label for sentence(s) {bad} after one re-ask "
                        f"({'; '.join(problems[:3])}); answer began {raw[i][-1][:80]!r}. Use a "
                        "stronger instruction model, or on_failure='other' to mark and report them"
                    )
                self.failures.append(failure)
                result[i] = [x if x is not None else "other" for x in labels]
                continue
            result[i] = [str(x) for x in labels]
            self._store(prompts[i], result[i], raw[i])
        return [list(r or []) for r in result]

    def __call__(self, sentences: list[str]) -> list[str]:
        if isinstance(sentences, str):
            raise TypeError("a labeller takes a list of sentences, got one str; wrap it in [...]")
        return self.label_traces([sentences])[0]
