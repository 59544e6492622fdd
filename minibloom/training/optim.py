"""AdamW, a cosine learning-rate schedule with warm-up, and clipping by global norm.

AdamW (Loshchilov & Hutter) keeps per parameter a running mean m of the gradients and of their
squares v, and moves each weight by m / sqrt(v): a step of about `lr` whatever the gradient's
scale. Weight decay is *decoupled*: the weights shrink by lr * wd directly, not through the gradient.
The step below is torch.optim.AdamW's, operation for operation (eps added after the bias-corrected
square root), so a run reproduces torch's to float32 rounding.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError


class AdamW:
    """torch.optim.AdamW on a dict of float32 arrays, updated in place.

    >>> opt = AdamW(model.params, lr=1e-3)
    >>> loss, grads = value_and_grad(model, input_ids=ids, labels=ids); opt.step(grads)
    """

    def __init__(self, params: dict[str, np.ndarray], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2):
        if not lr >= 0 or not eps >= 0 or not weight_decay >= 0:
            raise InputError(f"lr, eps and weight_decay must be >= 0, got {lr}, {eps}, {weight_decay}")
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise InputError(f"betas must be two numbers in [0, 1), got {betas}")
        bad = [n for n, p in params.items() if not (isinstance(p, np.ndarray) and p.dtype == np.float32)]
        if bad:
            raise InputError(f"AdamW updates float32 arrays in place; {bad[0]} is not one")
        _check_writable(params)
        self.params, self.lr, self.betas, self.eps, self.weight_decay = params, lr, tuple(betas), eps, weight_decay
        self.t = 0  # steps taken
        self.m = {n: np.zeros_like(p) for n, p in params.items()}  # first moment
        self.v = {n: np.zeros_like(p) for n, p in params.items()}  # second moment

    def step(self, grads: dict[str, np.ndarray]) -> None:
        """One update of every parameter from `grads` (same names and shapes)."""
        if set(grads) != set(self.params):
            raise InputError(f"grads must have exactly the parameters' names; differing: "
                             f"{sorted(set(grads) ^ set(self.params))[:3]}")
        for name, p in self.params.items():  # every check before the first update: never half a step
            if np.shape(grads[name]) != p.shape:
                raise InputError(f"grads[{name!r}] has shape {np.shape(grads[name])}, the parameter {p.shape}")
        _check_writable(self.params)
        self.t += 1
        beta1, beta2 = self.betas
        step_size = self.lr / (1 - beta1 ** self.t)  # bias correction of m, in double as torch
        correction2_sqrt = math.sqrt(1 - beta2 ** self.t)
        for name, p in self.params.items():
            g = np.asarray(grads[name], dtype=np.float32)
            m, v = self.m[name], self.v[name]
            p *= np.float32(1 - self.lr * self.weight_decay)  # decoupled weight decay, first
            tmp = g - m  # one scratch array per parameter, reused below (a 1 GB embedding: 1 GB, not 5)
            tmp *= np.float32(1 - beta1)
            m += tmp  # m = b1 m + (1 - b1) g, as torch's lerp
            np.multiply(g, g, out=tmp)
            tmp *= np.float32(1 - beta2)
            v *= np.float32(beta2)
            v += tmp  # v = b2 v + (1 - b2) g^2
            np.sqrt(v, out=tmp)
            tmp /= np.float32(correction2_sqrt)
            tmp += np.float32(self.eps)  # denom = sqrt(v) / sqrt(1 - b2^t) + eps
            np.divide(m, tmp, out=tmp)
            tmp *= np.float32(step_size)
            p -= tmp  # p -= lr / (1 - b1^t) * m / denom

    def state_dict(self) -> dict[str, np.ndarray]:
        """The optimizer state as named arrays (`m.<param>`, `v.<param>`, `step`), for a checkpoint."""
        state = {f"m.{n}": a for n, a in self.m.items()}
        state.update({f"v.{n}": a for n, a in self.v.items()})
        state["step"] = np.array([self.t], np.int64)
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore what `state_dict` saved (a resumed run then continues step for step)."""
        for n, p in self.params.items():  # all checked before anything is replaced
            for key in (f"m.{n}", f"v.{n}"):
                if key not in state or np.shape(state[key]) != p.shape:
                    raise InputError(f"optimizer state lacks {key} of shape {p.shape}")
        step = np.asarray(state.get("step", -1)).reshape(-1)
        if step.size != 1 or step.dtype.kind not in "iu" or step[0] < 0:
            raise InputError(f"optimizer state needs 'step', one non-negative integer, got {step.tolist()[:3]}")
        self.m = {n: np.array(state[f"m.{n}"], dtype=np.float32) for n in self.params}
        self.v = {n: np.array(state[f"v.{n}"], dtype=np.float32) for n in self.params}
        self.t = int(step[0])


def _check_writable(params: dict[str, np.ndarray]) -> None:
    """A read-only parameter (a memory-mapped file opened read-only, a frozen array) would fail in
    the middle of a step, after the others moved: refuse it up front, by name."""
    frozen = [n for n, p in params.items() if not p.flags.writeable]
    if frozen:
        raise InputError(f"AdamW updates parameters in place; {frozen[0]!r} is read-only "
                         "(copy it, or load the model with storage='float32')")


def cosine_schedule(step: int, base_lr: float, warmup_steps: int, total_steps: int, min_lr: float = 0.0) -> float:
    """The learning rate at `step` (0-based): linear warm-up from 0 to base_lr, then half a cosine
    down to min_lr at total_steps (transformers' get_cosine_schedule_with_warmup when min_lr = 0).

    Why warm up: Adam's v starts at 0 and is noisy over the first steps, so full-size steps there
    can throw the weights far; why decay: small steps at the end settle into a minimum.
    """
    if step < warmup_steps:
        return base_lr * step / max(1, warmup_steps)
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float) -> float:
    """Scale every gradient in place so that their global L2 norm is at most max_norm, as
    torch.nn.utils.clip_grad_norm_ (coefficient max_norm / (norm + 1e-6), capped at 1); returns the
    norm before clipping. One outlier batch then cannot take a huge step."""
    total = math.sqrt(sum(float(np.dot(g.ravel().astype(np.float64), g.ravel().astype(np.float64)))
                          for g in grads.values()))
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in grads.values():
            g *= np.float32(coef)
    return total
