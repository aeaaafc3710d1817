"""A pre-allocated KV cache for the loop, built on transformers' own ``StaticLayer``.

transformers' ``StaticCache`` allocates every layer's keys and values once, for the
longest sequence, and writes each step in place; but its attention then runs over all
allocated positions every step (masked), which on small models costs more than the
``DynamicCache``'s concatenation saves. :class:`FilledStaticLayer` keeps the allocation
and the in-place writes and hands attention a view of the positions filled so far: the
masks, the attention and so the numbers are the dynamic cache's. Finished rows are dropped
with ``batch_select_indices``, as from a ``DynamicCache``.

:func:`filled_static_cache` builds one for a model whose every layer attends to the whole
sequence (sliding-window and other layer kinds keep the ``DynamicCache``);
:func:`rlvr.generation.forward.new_cache` is the way in.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import Cache, StaticLayer

__all__ = ["FilledStaticLayer", "filled_static_cache"]


class FilledStaticLayer(StaticLayer):
    """A transformers ``StaticLayer`` that attends over its filled positions only.

    Keys and values live in buffers allocated for ``max_cache_len`` positions (doubled if
    a sequence outruns them); :meth:`update` writes the new positions in place and returns
    views of the ``filled`` ones. Not for ``torch.compile`` (the attended length changes
    every step).
    """

    is_compileable = False

    def __init__(self, max_cache_len: int, **kwargs: Any) -> None:
        super().__init__(max_cache_len=max(1, int(max_cache_len)), **kwargs)
        self.filled = 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.device = key_states.device
        self.batch_size, self.num_heads = key_states.shape[:2]
        self.k_head_dim, self.v_head_dim = key_states.shape[-1], value_states.shape[-1]
        rows = (self.batch_size, self.num_heads, self.max_cache_len)
        self.keys = key_states.new_empty((*rows, self.k_head_dim))
        self.values = value_states.new_empty((*rows, self.v_head_dim))
        self.cumulative_length = self.cumulative_length.to(self.device)
        self.filled = 0
        self.is_initialized = True

    def _grow(self, need: int) -> None:
        cap, n = max(need, 2 * self.max_cache_len), self.filled
        keys = self.keys.new_empty((*self.keys.shape[:2], cap, self.k_head_dim))
        values = self.values.new_empty((*self.values.shape[:2], cap, self.v_head_dim))
        keys[:, :, :n] = self.keys[:, :, :n]
        values[:, :, :n] = self.values[:, :, :n]
        self.keys, self.values, self.max_cache_len = keys, values, cap

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        n, k = self.filled, key_states.shape[-2]
        if n + k > self.max_cache_len:
            self._grow(n + k)
        self.keys[:, :, n : n + k] = key_states
        self.values[:, :, n : n + k] = value_states
        self.filled = n + k
        self.cumulative_length.add_(k)
        return self.keys[:, :, : n + k], self.values[:, :, : n + k]

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.filled + query_length, 0

    def get_seq_length(self) -> int:
        return self.filled

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep only the rows ``indices`` (one gather into new buffers of the same length)."""
        if not self.is_initialized:
            return
        self.keys = self.keys.index_select(0, indices)
        self.values = self.values.index_select(0, indices)
        self.batch_size = len(indices)

    def crop(self, tokens_to_remove: int) -> None:
        super().crop(tokens_to_remove)
        self.filled = max(0, self.filled - abs(tokens_to_remove))

    def reset(self) -> None:
        super().reset()
        self.filled = 0


def filled_static_cache(module: torch.nn.Module, capacity: int) -> Cache | None:
    """A cache of :class:`FilledStaticLayer` s for ``module`` (``capacity`` positions a
    row), or None where a layer does not attend to the whole sequence (sliding windows,
    chunked or linear attention) or transformers cannot lay the layers out."""
    config = getattr(module, "config", None)
    if config is None:
        return None
    try:
        from transformers.cache_utils import get_layer_types_and_kwargs

        types, _ = get_layer_types_and_kwargs(config.get_text_config(decoder=True))
    except Exception:  # noqa: BLE001 - an older transformers or an unusual config
        return None
    if not types or any(t != "full_attention" for t in types):
        return None
    return Cache(layers=[FilledStaticLayer(capacity) for _ in types])
