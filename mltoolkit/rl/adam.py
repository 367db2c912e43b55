"""Adam (Kingma & Ba, 2015) for the Q-network, on torch's fused kernel.

Why not ``torch.optim.Adam``: constructing any ``torch.optim`` optimizer imports torch's compiler
stack (``torch._dynamo``), about +150 MB of resident memory and +1.5 CPU-seconds per process:
more than the rest of a CartPole run needs. The update itself is torch's own: the fused Adam kernel
that ``torch.optim.Adam(fused=True)`` calls, or the same arithmetic in ``_foreach`` ops where a
build has no fused kernel for the device.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch


class Adam:
    """Adam without weight decay or AMSGrad: ``p -= lr * m_hat / (sqrt(v_hat) + eps)``."""

    def __init__(
        self, params: Iterable[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.steps = [torch.zeros((), device=p.device) for p in self.params]  # the fused kernel's step counters
        self.fused = hasattr(torch, "_fused_adam_")

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        grads = [p.grad for p in self.params]
        torch._foreach_add_(self.steps, 1)
        beta1, beta2 = self.betas
        if self.fused:
            try:
                torch._fused_adam_(
                    self.params, grads, self.exp_avg, self.exp_avg_sq, [], self.steps,
                    lr=self.lr, beta1=beta1, beta2=beta2, weight_decay=0.0, eps=self.eps,
                    amsgrad=False, maximize=False,
                )  # fmt: skip
                return
            except (RuntimeError, NotImplementedError):  # no fused kernel for this device in this build
                self.fused = False
        t = float(self.steps[0])
        torch._foreach_lerp_(self.exp_avg, grads, 1 - beta1)
        torch._foreach_mul_(self.exp_avg_sq, beta2)
        torch._foreach_addcmul_(self.exp_avg_sq, grads, grads, 1 - beta2)
        denom = torch._foreach_sqrt(self.exp_avg_sq)
        torch._foreach_div_(denom, math.sqrt(1 - beta2**t))
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(self.params, self.exp_avg, denom, -self.lr / (1 - beta1**t))

    def state_dict(self) -> dict[str, Any]:
        return {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq, "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("exp_avg", "exp_avg_sq", "steps"):
            for mine, saved in zip(getattr(self, name), state[name], strict=True):
                mine.copy_(saved)
