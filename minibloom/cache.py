"""The KV cache: keys and values of past tokens, kept so each new token costs one token's work.

Without a cache, generating token t re-runs the whole prefix: O(t) work per token and O(n^2) for n
tokens. Every layer's keys and values for tokens already seen never change (causal attention: a
token never looks forward), so we store them and compute only the new token's q, k, v.

Layout, as Flax's `init_cache`: one preallocated array per layer and kind, [B, N, S_max, D], filled
left to right. A step writes its T new rows at positions [P, P + T) in place -- no concatenation,
so the cost per step stays flat as the sequence grows. (transformers 4.57.1's DynamicCache instead
concatenates along S every step.)

Shape legend: B batch, N heads, D head_dim, P tokens already cached, T new tokens, S = P + T.
"""

from __future__ import annotations

import math

import numpy as np

from dataclasses import dataclass

from .errors import InputError
from .validation import check_allocation


def _check_size(n_layer: int, shape: tuple[int, int, int, int], why: str) -> None:
    """Keys and values of `n_layer` layers, float32 [B, N, capacity, D] each, against the memory budget."""
    check_allocation(2 * n_layer * 4 * math.prod(shape), f"KVCache capacity={shape[2]} ({why})")


class KVCache:
    """Per-layer keys and values [B, N, capacity, D]; `length` positions are filled.

    A cache made for generation has a fixed `capacity` (prompt + new tokens) and refuses to
    overflow; one the model makes on its own (`growable=True`) doubles its capacity when full.
    """

    def __init__(self, n_layer: int, batch: int, n_head: int, head_dim: int, capacity: int,
                 growable: bool = False):
        if min(n_layer, batch, n_head, head_dim, capacity) <= 0:
            raise InputError(f"KVCache sizes must be positive, got n_layer={n_layer}, batch={batch}, "
                             f"n_head={n_head}, head_dim={head_dim}, capacity={capacity}")
        shape = (batch, n_head, capacity, head_dim)
        _check_size(n_layer, shape, f"prompt + new tokens; keys and values of {n_layer} layers [B={batch}, N, S, D]")
        self.keys = [np.zeros(shape, np.float32) for _ in range(n_layer)]  # L x [B, N, S_max, D]
        self.values = [np.zeros(shape, np.float32) for _ in range(n_layer)]  # L x [B, N, S_max, D]
        self.length = 0  # P: how many positions hold real entries
        self.growable = growable

    @classmethod
    def for_config(cls, config, batch: int, capacity: int, growable: bool = False) -> "KVCache":
        return cls(config.n_layer, batch, config.n_head, config.head_dim, capacity, growable)

    @property
    def capacity(self) -> int:
        return self.keys[0].shape[2]

    @property
    def batch_size(self) -> int:
        return self.keys[0].shape[0]

    def get_seq_length(self) -> int:
        """P, the number of cached positions (transformers' name)."""
        return self.length

    def __len__(self) -> int:
        """The number of layers, as transformers' Cache (`len(past)`)."""
        return len(self.keys)

    def __getitem__(self, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """The legacy view `past[i]` = (key, value) of layer i, each [B, N, P, D] (views, not copies):
        `past[i][0]` is layer i's keys, as transformers' Cache and its legacy tuples index."""
        if not -len(self) <= layer < len(self):
            raise InputError(f"the cache has {len(self)} layers; layer {layer} does not exist")
        P = self.length
        return self.keys[layer][:, :, :P], self.values[layer][:, :, :P]

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def reserve(self, capacity: int) -> None:
        """Make room for `capacity` positions (generate continuing from this cache needs prompt +
        new tokens); the filled positions are kept."""
        if capacity > self.capacity:
            self._grow(capacity)

    def check_fits(self, batch: int, new_tokens: int) -> None:
        """Raise `InputError` if a step of `new_tokens` for `batch` rows cannot be written."""
        if batch != self.batch_size:
            raise InputError(f"past_key_values holds {self.batch_size} rows, the input has {batch}")
        needed = self.length + new_tokens
        if needed > self.capacity:
            if not self.growable:
                raise InputError(f"the KV cache holds {self.capacity} positions; {self.length} are used and "
                                 f"{new_tokens} more do not fit (make it with a larger capacity)")
            self._grow(max(needed, 2 * self.capacity))

    def _grow(self, capacity: int) -> None:
        B, N, _, D = self.keys[0].shape
        _check_size(len(self.keys), (B, N, capacity, D), "growing a passed cache for prompt + new tokens")
        pad = ((0, 0), (0, 0), (0, capacity - self.capacity), (0, 0))
        self.keys = [np.pad(k, pad) for k in self.keys]
        self.values = [np.pad(v, pad) for v in self.values]

    def update(self, layer: int, key: np.ndarray, value: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
        """Write new key/value rows [B, N, T, D] at positions [start, start + T); return every
        position so far, [B, N, start + T, D] each (views: nothing is copied)."""
        end = start + key.shape[2]
        self.keys[layer][:, :, start:end] = key
        self.values[layer][:, :, start:end] = value
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def reorder(self, beam_idx: np.ndarray) -> None:
        """Row i takes row beam_idx[i]'s past (beam search: each surviving beam inherits its parent's).

        Only the filled positions are copied, in place: no new arrays.
        """
        P = self.length
        for arrays in (self.keys, self.values):
            for a in arrays:
                a[:, :, :P] = a[beam_idx, :, :P]

    def to_legacy(self) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """Per layer (key, value), each [B, N, P, D]: transformers 4.57.1's
        `DynamicCache.to_legacy_cache()` layout (not the pre-2024 [B*N, D, P] / [B*N, P, D] one)."""
        P = self.length
        return tuple((k[:, :, :P].copy(), v[:, :, :P].copy()) for k, v in zip(self.keys, self.values))

    @classmethod
    def from_legacy(cls, layers, capacity: int | None = None, growable: bool = True) -> "KVCache":
        """Build a cache from per-layer (key, value) [B, N, P, D] arrays, e.g. a converted DynamicCache."""
        layers = [(np.asarray(k, np.float32), np.asarray(v, np.float32)) for k, v in layers]
        if not layers or any(k.ndim != 4 or k.shape != v.shape or k.shape != layers[0][0].shape for k, v in layers):
            raise InputError("past_key_values must be per-layer (key, value) pairs, all of one shape [B, N, P, D]")
        B, N, P, D = layers[0][0].shape
        cache = cls(len(layers), B, N, D, max(capacity or P, P, 1), growable)
        for i, (k, v) in enumerate(layers):
            cache.update(i, k, v, 0)
        cache.length = P
        return cache


@dataclass(frozen=True)
class CacheSlot:
    """One layer's place in a cache for one forward step: where the new keys and values go."""

    cache: KVCache
    layer: int
    start: int  # P, the first free position

    def store(self, key: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Write this step's key/value [B, N, T, D]; return the past and new ones, [B, N, P + T, D] each."""
        return self.cache.update(self.layer, key, value, self.start)
