"""Model handles: one small protocol over a loaded causal LM, three adapters.

A handle exposes the tokenizer, ``n_layers``, ``d_model``, a :class:`Fingerprint`, and
one primitive, :meth:`ModelHandle.run`: a forward pass that can *read* residual
activations at Sites (optionally only at chosen positions), *edit* them, stop after
the last layer it needs, and carry a KV cache. Extraction, steering, the sampler and
the hybrid decoder all go through ``run``.

Adapters:

- :class:`HFHandle` — a plain ``transformers`` model, torch hooks (the fast path).
- :class:`NNsightHandle` — an nnsight ``TransformersModel``; every pass is a trace.
- :class:`TLHandle` — a TransformerLens 4 ``TransformerBridge``; hook points by name.

:func:`wrap` accepts any of those objects (or a local checkpoint path) and returns the
matching handle.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from rlvr.forward import forward_arg_names, new_cache, position_ids_from_mask

from .sites import (
    Site,
    as_sites,
    decoder_layers_path,
    exec_order,
    hidden_from,
    replace_hidden,
)

Edit = Callable[[torch.Tensor], torch.Tensor]
"""An edit maps the residual at a site, shape (batch, seq, d_model), to its new value."""

BACKENDS = ("hf", "nnsight", "transformerlens")


@dataclass(frozen=True)
class Fingerprint:
    """What identifies a model for the purpose of reusing vectors and activations.

    ``weights`` is a SHA-256 over every parameter's name, shape and a strided sample of
    its values, so a fine-tuned checkpoint of the same architecture differs.
    ``name`` is informational and not compared.
    """

    architecture: str
    n_layers: int
    d_model: int
    vocab_size: int
    weights: str
    name: str = ""

    def matches(self, other: Fingerprint) -> bool:
        a, b = asdict(self), asdict(other)
        a.pop("name")
        b.pop("name")
        return a == b

    def describe(self) -> str:
        label = f"{self.name} " if self.name else ""
        return (
            f"{label}[{self.architecture}, {self.n_layers} layers, d_model {self.d_model}, "
            f"weights {self.weights[:12]}]"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Fingerprint:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def canonical_parameters(model: torch.nn.Module):
    """``(name, parameter)`` pairs of a model under its Hugging Face names, each tensor once.

    A TransformerLens ``TransformerBridge`` wraps the HF modules in place (each wrapper keeps
    the original as ``_original_component``) and adds views of its own (GPT-2's fused
    ``c_attn`` also appears split into ``q``/``k``/``v``). Walking only the original
    components gives the same names and tensors as the plain HF model, so one checkpoint
    has one fingerprint whichever adapter holds it.
    """
    seen: set[int] = set()

    def walk(mod: torch.nn.Module, prefix: str):
        while hasattr(mod, "_original_component"):  # a TransformerBridge wrapper
            mod = mod._original_component
        for name, p in mod.named_parameters(recurse=False):
            if p is not None and id(p) not in seen:
                seen.add(id(p))
                yield prefix + name, p
        for name, child in mod.named_children():
            if child is not None:
                yield from walk(child, f"{prefix}{name}.")

    yield from walk(model, "")


def fingerprint_of(model: torch.nn.Module, n_layers: int, d_model: int) -> Fingerprint:
    """Fingerprint a torch model: architecture, sizes and a sampled hash of the weights."""
    h = hashlib.sha256()
    with torch.no_grad():
        for name, p in canonical_parameters(model):
            flat = p.detach().reshape(-1)
            step = max(1, flat.numel() // 4096)
            # rounded to bf16 so fp32 and bf16 loads of one checkpoint agree
            sample = flat[::step][:4096].to("cpu", torch.bfloat16).float().contiguous()
            h.update(name.encode())
            h.update(str(tuple(p.shape)).encode())
            h.update(sample.numpy().tobytes())
    cfg = getattr(model, "config", None)
    arch = (getattr(cfg, "architectures", None) or [type(model).__name__])[0]
    vocab = int(getattr(cfg, "vocab_size", 0) or 0)
    name = str(getattr(cfg, "_name_or_path", "") or "")
    return Fingerprint(arch, n_layers, d_model, vocab, h.hexdigest(), name)


@dataclass
class RunOutput:
    """What :meth:`ModelHandle.run` returns."""

    logits: torch.Tensor | None
    acts: dict[Site, torch.Tensor] = field(default_factory=dict)
    past_key_values: Any = None


class _Stop(Exception):
    """Raised inside a hook to end a forward pass after the last site it needs."""


class ModelHandle:
    """Common protocol. Subclasses implement :meth:`_forward`."""

    backend: str = ""

    def __init__(self, hf_model: torch.nn.Module, tokenizer: Any) -> None:
        if tokenizer is None:
            raise ValueError(
                "this model has no tokenizer: pass tokenizer=... (the handle needs one to "
                "encode text and align spans)"
            )
        self.model = hf_model
        self.tokenizer = tokenizer
        cfg = hf_model.config
        self.n_layers = int(cfg.num_hidden_layers)
        self.d_model = int(cfg.hidden_size)
        self.vocab_size = int(cfg.vocab_size)
        self.layers_path = decoder_layers_path(hf_model, self.n_layers)
        self._cache_kwarg, self._keep_kwarg = forward_arg_names(hf_model)
        self._fingerprint: Fingerprint | None = None
        if getattr(tokenizer, "pad_token_id", None) is None:
            eos = getattr(tokenizer, "eos_token", None)
            if eos is None:
                raise ValueError("the tokenizer has neither a pad nor an eos token: set one")
            tokenizer.pad_token = eos

    # -- identity ---------------------------------------------------------------------
    @property
    def fingerprint(self) -> Fingerprint:
        if self._fingerprint is None:
            self._fingerprint = fingerprint_of(self.model, self.n_layers, self.d_model)
        return self._fingerprint

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.fingerprint.describe()})"

    def sites(self, kind: str = "resid_post") -> list[Site]:
        """Every site of one kind in this model."""
        return [Site(layer, kind) for layer in range(self.n_layers)]  # type: ignore[arg-type]

    def check_site(self, site: Site | str) -> Site:
        return Site.parse(site).check(self.n_layers)

    def check_vector(self, v: torch.Tensor, what: str = "vector") -> None:
        if v.shape[-1] != self.d_model:
            raise ValueError(
                f"{what} has width {v.shape[-1]} but this model's d_model is {self.d_model}: "
                "use a vector fitted on this model"
            )

    # -- encoding ---------------------------------------------------------------------
    def encode(self, texts: Sequence[str], add_special_tokens: bool = True) -> dict:
        """Tokenize with left padding (the sampler and extraction share this)."""
        if isinstance(texts, str):
            texts = [texts]
        if not texts:
            raise ValueError("no texts to encode")
        tok = self.tokenizer
        old = tok.padding_side
        tok.padding_side = "left"
        try:
            enc = tok(
                list(texts),
                return_tensors="pt",
                padding=True,
                add_special_tokens=add_special_tokens,
            )
        finally:
            tok.padding_side = old
        return {
            k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")
        }

    # -- the one primitive ------------------------------------------------------------
    def run(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *,
        read: Sequence[Site | str] = (),
        index: tuple[torch.Tensor, torch.Tensor] | None = None,
        edits: Mapping[Site | str, Edit] | None = None,
        stop_early: bool = False,
        position_ids: torch.Tensor | None = None,
        past_key_values: Any = None,
        use_cache: bool = False,
        logits_to_keep: int = 0,
    ) -> RunOutput:
        """One forward pass.

        read: sites whose residual is returned in ``acts`` (after any edit at that site).
        index: ``(rows, cols)`` — return only those positions, shape (N, d_model), so memory
            grows with the positions asked for, not with sequence x layers.
        edits: site -> function applied to the residual there.
        stop_early: end the pass after the last site in ``read`` (no logits then).
        logits_to_keep: return logits for the last this-many positions only (0 = all); with a
            large vocabulary the full prefill logits can outweigh the model.
        """
        if input_ids.ndim != 2:
            raise ValueError(f"input_ids must be (batch, seq), got shape {tuple(input_ids.shape)}")
        if input_ids.shape[0] == 0 or input_ids.shape[1] == 0:
            raise ValueError("empty input: give at least one token in one row")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if position_ids is None:
            if past_key_values is not None:
                raise ValueError("with past_key_values, pass position_ids for the new tokens")
            position_ids = position_ids_from_mask(attention_mask)
        reads = as_sites(read, self.n_layers) if read else []
        edit_map = {Site.parse(s).check(self.n_layers): f for s, f in (edits or {}).items()}
        if stop_early and not reads:
            raise ValueError("stop_early needs at least one site to read")
        if stop_early and (past_key_values is not None or use_cache):
            raise ValueError(
                "stop_early leaves a KV cache half-filled: read without a cache, or run the "
                "whole pass"
            )
        out = self._forward(
            input_ids,
            attention_mask,
            position_ids,
            reads,
            index,
            edit_map,
            max(reads, key=exec_order) if stop_early else None,
            past_key_values,
            use_cache,
            logits_to_keep,
        )
        if logits_to_keep and out.logits is not None and out.logits.shape[1] > logits_to_keep:
            out.logits = out.logits[:, -logits_to_keep:]  # adapters without the argument
        return out

    def _forward(
        self,
        input_ids,
        attention_mask,
        position_ids,
        reads,
        index,
        edits,
        stop_site,
        past_key_values,
        use_cache,
        logits_to_keep=0,
    ) -> RunOutput:
        raise NotImplementedError

    def _keep(self, logits_to_keep: int) -> dict[str, int]:
        """The model's own argument for computing only the last logits, when it has one."""
        return {self._keep_kwarg: logits_to_keep} if logits_to_keep and self._keep_kwarg else {}

    def logits(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        edits: Mapping[Site | str, Edit] | None = None,
    ) -> torch.Tensor:
        """Logits of a plain (optionally edited) forward pass."""
        with torch.no_grad():
            out = self.run(input_ids, attention_mask, edits=edits)
        assert out.logits is not None
        return out.logits


def _gather(h: torch.Tensor, index) -> torch.Tensor:
    if index is None:
        return h.detach()
    rows, cols = index  # a model split across devices: index where this layer lives
    return h[rows.to(h.device), cols.to(h.device)].detach()


# -- Hugging Face (torch hooks) -------------------------------------------------------


class HFHandle(ModelHandle):
    """A plain ``transformers`` causal LM driven with torch hooks."""

    backend = "hf"

    def layer_module(self, layer: int) -> torch.nn.Module:
        mod = self.model
        for part in self.layers_path.split("."):
            mod = getattr(mod, part)
        return mod[layer]

    @contextmanager
    def hooks(
        self,
        edits: Mapping[Site, Edit],
        reads: Sequence[Site] = (),
        index=None,
        stop_site: Site | None = None,
        acts: dict | None = None,
    ):
        """Register edit/read hooks for the duration of the block; always removed."""
        handles = []
        sites = sorted(set(edits) | set(reads))

        def apply(site: Site, h: torch.Tensor) -> torch.Tensor:
            if site in edits:
                h = edits[site](h)
            if site in reads and acts is not None:
                acts[site] = _gather(h, index)
            return h

        try:
            for site in sites:
                mod = self.layer_module(site.layer)
                if site.kind == "resid_pre":

                    def pre(module, args, kwargs, site=site):
                        if args:
                            h = apply(site, args[0])
                            args = (h, *args[1:])
                        else:
                            kwargs["hidden_states"] = apply(site, kwargs["hidden_states"])
                        if site == stop_site:
                            raise _Stop
                        return args, kwargs

                    handles.append(mod.register_forward_pre_hook(pre, with_kwargs=True))
                else:

                    def post(module, args, output, site=site):
                        new = apply(site, hidden_from(output))
                        if site == stop_site:
                            raise _Stop
                        return replace_hidden(output, new)

                    handles.append(mod.register_forward_hook(post))
            yield
        finally:
            for h in handles:
                h.remove()

    def _forward(
        self,
        input_ids,
        attention_mask,
        position_ids,
        reads,
        index,
        edits,
        stop_site,
        past_key_values,
        use_cache,
        logits_to_keep=0,
    ) -> RunOutput:
        acts: dict[Site, torch.Tensor] = {}
        with self.hooks(edits, reads, index, stop_site, acts):
            try:
                out = self.model(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    position_ids=position_ids,
                    use_cache=use_cache,
                    **{self._cache_kwarg: past_key_values},
                    **self._keep(logits_to_keep),
                )
            except _Stop:
                return RunOutput(None, acts, past_key_values)
        cache = getattr(out, "cache", None)  # transformers >= 5.2x
        if cache is None:
            cache = getattr(out, "past_key_values", None)
        return RunOutput(out.logits, acts, cache if use_cache else None)


# -- nnsight ------------------------------------------------------------------------


class NNsightHandle(ModelHandle):
    """An nnsight ``TransformersModel``: reads and edits are done inside ``trace``."""

    backend = "nnsight"

    def __init__(self, nn_model: Any, tokenizer: Any = None, remote: bool = False) -> None:
        self.nn = nn_model
        self.remote = remote
        if tokenizer is None:
            tokenizer = checkpoint_tokenizer(nn_model._module, None) or getattr(
                nn_model, "tokenizer", None
            )
        super().__init__(nn_model._module, tokenizer)

    def _envoy_layer(self, layer: int):
        env = self.nn
        for part in self.layers_path.split("."):
            env = getattr(env, part)
        return env[layer]

    def _forward(
        self,
        input_ids,
        attention_mask,
        position_ids,
        reads,
        index,
        edits,
        stop_site,
        past_key_values,
        use_cache,
        logits_to_keep=0,
    ) -> RunOutput:
        saved: dict[Site, Any] = {}
        logits = None
        if use_cache and past_key_values is None:  # a cache the caller gets back, filled
            past_key_values = new_cache(self.model)
        kwargs = {
            "attention_mask": attention_mask,
            "position_ids": position_ids,
            "use_cache": use_cache,
            self._cache_kwarg: past_key_values,
            **self._keep(logits_to_keep),
        }
        # nnsight requires touching modules in execution order.
        sites = sorted(set(edits) | set(reads), key=exec_order)
        with self.nn.trace(input_ids, remote=self.remote, **kwargs) as tracer:
            for site in sites:
                env = self._envoy_layer(site.layer)
                if site.kind == "resid_pre":
                    h = env.input
                    if site in edits:
                        env.input = edits[site](h)
                        h = env.input
                else:
                    h = env.output
                    if isinstance(h, tuple):  # older transformers return tuples
                        h0 = h[0]
                        if site in edits:
                            env.output = (edits[site](h0), *h[1:])
                        h = env.output[0]
                    elif site in edits:
                        env.output = edits[site](h)
                        h = env.output
                if site in reads:
                    saved[site] = _gather(h, index).save()
                if site == stop_site:
                    tracer.stop()
            if stop_site is None:
                out = self.nn.output.save()
        acts = {s: v for s, v in saved.items()}
        if stop_site is None:
            logits = out.logits
        return RunOutput(logits, acts, past_key_values if use_cache else None)


# -- TransformerLens (TransformerBridge) -----------------------------------------------


class TLHandle(ModelHandle):
    """A TransformerLens 4 ``TransformerBridge``: hook points named like Sites."""

    backend = "transformerlens"

    def __init__(self, bridge: Any, tokenizer: Any = None) -> None:
        self.bridge = bridge
        if tokenizer is None:
            # not the bridge's own: it adds a BOS token (and for Qwen2 is another class), so
            # the same text would give other tokens, activations and generations than HF
            tokenizer = checkpoint_tokenizer(bridge.original_model, "TransformerBridge")
        super().__init__(bridge.original_model, tokenizer)

    def _forward(
        self,
        input_ids,
        attention_mask,
        position_ids,
        reads,
        index,
        edits,
        stop_site,
        past_key_values,
        use_cache,
        logits_to_keep=0,
    ) -> RunOutput:
        acts: dict[Site, torch.Tensor] = {}
        hooks = []
        for site in sorted(set(edits) | set(reads)):

            def fn(h, hook, site=site):
                if site in edits:
                    h = edits[site](h)
                if site in reads:
                    acts[site] = _gather(h, index)
                return h

            hooks.append((site.name, fn))
        kwargs: dict[str, Any] = dict(attention_mask=attention_mask, position_ids=position_ids)
        if past_key_values is not None or use_cache:
            if past_key_values is None:
                past_key_values = new_cache(self.model)
            kwargs.update(past_key_values=past_key_values, use_cache=True)
            if self._cache_kwarg == "cache":
                # The bridge's attention reads its cache from ``past_key_values`` or
                # ``layer_past``, but transformers >= 5 hands layers ``cache=``: without this
                # the cache stays empty and cached decoding silently ignores the context.
                kwargs["layer_past"] = past_key_values
            before = past_key_values.get_seq_length()
        if stop_site is not None:
            kwargs["stop_at_layer"] = stop_site.layer + 1
        with self.bridge.hooks(fwd_hooks=hooks):
            out = self.bridge(
                input_ids, return_type="logits" if stop_site is None else None, **kwargs
            )
        logits = out if stop_site is None else None
        if past_key_values is not None and stop_site is None:
            grown = past_key_values.get_seq_length() - before
            if grown != input_ids.shape[1]:
                raise RuntimeError(
                    f"the TransformerLens bridge grew the KV cache by {grown} tokens for "
                    f"{input_ids.shape[1]} new ones: cached decoding is broken with this "
                    "transformers/transformer-lens pair; decode without a cache (use_cache=False)"
                )
        return RunOutput(logits, acts, past_key_values if use_cache else None)


# -- entry point -----------------------------------------------------------------------


def _load_tokenizer(path: str | Path):
    """The tokenizer saved in a checkpoint folder.

    A plain ``tokenizers`` tokenizer (e.g. the organism's character tokenizer) is loaded as
    such: ``AutoTokenizer`` would pick the architecture's default class (for Qwen2 one
    that drops spaces) instead of what was saved.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    cfg = Path(path) / "tokenizer_config.json"
    if cfg.exists():
        cls = json.loads(cfg.read_text()).get("tokenizer_class")
        if cls in ("TokenizersBackend", "PreTrainedTokenizerFast"):
            return PreTrainedTokenizerFast.from_pretrained(str(path))
    return AutoTokenizer.from_pretrained(str(path))


def checkpoint_tokenizer(model: torch.nn.Module, holder: str | None):
    """The tokenizer saved with ``model``'s checkpoint, loaded as :func:`load_hf` loads it.

    Every adapter tokenizes one checkpoint the same way. Returns None when the checkpoint
    folder is unknown, unless ``holder`` names a wrapper whose own tokenizer must not be
    used: then raise with what to do.
    """
    path = str(getattr(getattr(model, "config", None), "_name_or_path", "") or "")
    if path and Path(path).is_dir():
        return _load_tokenizer(path)
    if holder is None:
        return None
    hint = (
        f"pass the checkpoint's tokenizer: probes.wrap(bridge, tokenizer=...) ({holder}'s "
        "own tokenizer adds a BOS token, so text would be tokenized unlike the HF model)"
    )
    if not path:
        raise ValueError(f"cannot find the checkpoint this {holder} was loaded from: {hint}")
    try:
        return _load_tokenizer(path)
    except OSError as e:
        raise ValueError(f"cannot load the tokenizer of {path!r} ({e}): {hint}") from e


def load_hf(
    path: str | Path,
    device: str | None = None,
    dtype: torch.dtype | None = None,
    device_map: str | None = None,
):
    """Load a local (or cached) checkpoint with transformers; never downloads when offline."""
    from transformers import AutoModelForCausalLM

    p = Path(path)
    if not p.exists() and not str(path).count("/") == 1:
        raise ValueError(
            f"no checkpoint at {path!r}: give a local folder with config.json and weights "
            "(or a hub id such as 'Qwen/Qwen2.5-Math-1.5B' on a machine that can download)"
        )
    kwargs: dict[str, Any] = {}
    if dtype is not None:
        kwargs["dtype"] = dtype
    if device_map is not None:
        kwargs["device_map"] = device_map
    model = AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
    if device is not None and device_map is None:
        model = model.to(device)
    model.eval()
    return model, _load_tokenizer(path)


def wrap(
    model: Any,
    tokenizer: Any = None,
    backend: str | None = None,
    *,
    device: str | None = None,
    dtype: torch.dtype | None = None,
    device_map: str | None = None,
    remote: bool = False,
) -> ModelHandle:
    """Return a handle for a HF model, nnsight model, TransformerBridge, handle or path.

    ``backend`` picks the adapter when ``model`` is a path (default ``"hf"``) or
    re-wraps a HF model (``"nnsight"``, ``"transformerlens"``).

    One checkpoint gets one fingerprint and one tokenization whichever adapter holds it:
    without ``tokenizer=``, an nnsight model or a TransformerBridge is given the tokenizer
    saved with its checkpoint, loaded as :func:`load_hf` loads it, not the wrapper's own
    (the bridge's adds a BOS token; for a saved ``tokenizers`` tokenizer ``AutoTokenizer``
    may pick another class). Pass ``tokenizer=`` to choose one yourself.
    """
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if isinstance(model, ModelHandle):
        if backend is None or backend == model.backend:
            return model
        return wrap(model.model, model.tokenizer, backend, remote=remote)
    if isinstance(model, (str, Path)):
        hf, tok = load_hf(model, device=device, dtype=dtype, device_map=device_map)
        return wrap(hf, tokenizer or tok, backend or "hf", remote=remote)
    cls = type(model).__name__
    mod = type(model).__module__
    if mod.startswith("nnsight"):
        return NNsightHandle(model, tokenizer, remote=remote)
    if cls == "TransformerBridge":
        return TLHandle(model, tokenizer)
    if isinstance(model, torch.nn.Module) and hasattr(model, "config"):
        if backend in (None, "hf"):
            return HFHandle(model, tokenizer)
        if tokenizer is None:
            path = getattr(model.config, "_name_or_path", "")
            tokenizer = _load_tokenizer(path) if path and Path(path).exists() else None
        if backend == "nnsight":
            from nnsight.modeling.transformers import TransformersModel

            return NNsightHandle(
                TransformersModel(model, tokenizer=tokenizer), tokenizer, remote=remote
            )
        from transformer_lens.model_bridge import TransformerBridge

        path = getattr(model.config, "_name_or_path", "")
        if not path or not Path(path).exists():
            raise ValueError(
                "the TransformerLens bridge boots from a checkpoint folder: save the model "
                "with save_pretrained(path) and pass the path with backend='transformerlens'"
            )
        bridge = TransformerBridge.boot_transformers(
            # the bridge rewires the modules it is given: hand it a copy, not the user's model
            path,
            device=str(next(model.parameters()).device),
            hf_model=copy.deepcopy(model),
            tokenizer=tokenizer,
        )
        return TLHandle(bridge, tokenizer)
    raise TypeError(
        f"cannot wrap a {cls}: pass a transformers PreTrainedModel, an nnsight "
        "TransformersModel, a TransformerLens TransformerBridge, or a checkpoint path"
    )


def config_summary(handle: ModelHandle) -> str:
    return json.dumps(handle.fingerprint.to_dict())
