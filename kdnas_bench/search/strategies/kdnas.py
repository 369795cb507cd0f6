"""The KD-NAS controller: a learned reward predictor over architecture encodings.

As in the paper's re-implementations, the controller is an LSTM (hidden 32) that reads one embedding
per architectural choice (layers, hidden, heads, FFN) and regresses the reward. Each choice's token
also carries its ordinal position (a learned linear map of index / (choices - 1)): with purely
categorical embeddings, values not yet observed get random embeddings and the controller generalises
poorly from a few dozen rewards (Kendall τ 0.35 vs 0.5+ on held-out archs in tests/test_search.py). It is trained with MSE on
every reward observed so far. Each ``ask`` is one episode: sample a pool of unseen feasible archs,
score it with the controller, take the top ones and mix in ε-greedy random picks; ε starts at
``eps_start`` and drops by ``eps_decay`` per episode to ``eps_min``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ...lazy import lazy_module
from ...space import ARCH_DIMS, Arch
from ..domain import Domain

if TYPE_CHECKING:
    import torch
    from torch import nn
else:
    torch = lazy_module("torch")
    nn = lazy_module("torch.nn")


def _controller(choices: dict[str, tuple[int, ...]], emb: int, hidden: int) -> Any:
    class Controller(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embeddings = nn.ModuleList(nn.Embedding(len(choices[d]), emb) for d in ARCH_DIMS)
            # an ordinal channel per choice: values never observed still land near their neighbours
            self.ordinal = nn.ModuleList(nn.Linear(1, emb) for _ in ARCH_DIMS)
            self.scale = torch.tensor([max(len(choices[d]) - 1, 1) for d in ARCH_DIMS], dtype=torch.float32)
            self.lstm = nn.LSTM(emb, hidden, batch_first=True)
            self.head = nn.Linear(hidden, 1)

        def forward(self, codes: torch.Tensor) -> torch.Tensor:  # codes: (batch, 4) ordinal indices
            pos = codes.float() / self.scale
            pairs = zip(self.embeddings, self.ordinal, strict=True)
            tokens = torch.stack([e(codes[:, i]) + o(pos[:, i : i + 1]) for i, (e, o) in enumerate(pairs)], dim=1)
            out, _ = self.lstm(tokens)
            return self.head(out[:, -1]).squeeze(-1)

    return Controller()


def _fit_adam(model: Any, loss_fn: Any, steps: int, lr: float, weight_decay: float) -> None:
    """A plain Adam loop (L2 weight decay): the controller is tiny, and this avoids the per-step
    overhead of torch.optim (whose import also pulls in torch._dynamo)."""
    params = [p for p in model.parameters() if p.requires_grad]
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    b1, b2, eps = 0.9, 0.999, 1e-8
    for t in range(1, steps + 1):
        for p in params:
            p.grad = None
        loss_fn().backward()
        with torch.no_grad():
            for p, mi, vi in zip(params, m, v, strict=True):
                g = p.grad + weight_decay * p
                mi.mul_(b1).add_(g, alpha=1 - b1)
                vi.mul_(b2).addcmul_(g, g, value=1 - b2)
                step = lr * (1 - b2**t) ** 0.5 / (1 - b1**t)
                p.addcdiv_(mi, vi.sqrt().add_(eps), value=-step)


class KDNAS:
    name = "kdnas"

    def __init__(self, domain: Domain, seed: int = 0, pool: int = 128, eps_start: float = 1.0,
                 eps_decay: float = 0.05, eps_min: float = 0.05, hidden: int = 32, embedding: int = 16,
                 train_steps: int = 200, lr: float = 0.01, weight_decay: float = 1e-3,
                 target: str = "reward") -> None:
        self.domain = domain
        self.seed = seed
        self.pool = pool
        self.eps_start, self.eps_decay, self.eps_min = eps_start, eps_decay, eps_min
        self.hidden, self.embedding = hidden, embedding
        self.train_steps, self.lr, self.weight_decay = train_steps, lr, weight_decay
        if target not in ("reward", "metric"):
            raise ValueError(f"target must be 'reward' or 'metric', got {target!r}")
        self.target = target  # "metric": learn the accuracy term only; the latency term is known exactly
        self.episode = 0
        self._rng = np.random.default_rng(seed)
        self._seen: set[Arch] = set()
        self._observed: dict[Arch, float] = {}
        self._scale = (0.0, 1.0)
        self._model: Any = None
        self._trained_on = 0

    @property
    def epsilon(self) -> float:
        return max(self.eps_min, self.eps_start - self.eps_decay * self.episode)

    # -- the controller ---------------------------------------------------------------------------
    def _codes(self, archs: list[Arch]) -> Any:
        return torch.tensor([self.domain.encode(a) for a in archs], dtype=torch.long)

    def fit_controller(self) -> None:
        """Retrain the controller on every reward told so far (``ask`` does this first; a no-op when nothing new)."""
        if len(self._observed) < 2 or len(self._observed) == self._trained_on:
            return
        archs = sorted(self._observed)
        y = torch.tensor([self._observed[a] for a in archs], dtype=torch.float32)
        mu, sd = y.mean(), y.std().clamp_min(1e-6)
        self._scale = (float(mu), float(sd))
        with torch.random.fork_rng():
            torch.manual_seed(self.seed * 1009 + len(archs))
            model = _controller(self.domain.choices, self.embedding, self.hidden)
            codes, target = self._codes(archs), (y - mu) / sd
            _fit_adam(model, lambda: torch.nn.functional.mse_loss(model(codes), target), self.train_steps,
                      self.lr, self.weight_decay)
        self._model = model.eval()
        self._trained_on = len(archs)

    @property
    def observed(self) -> dict[Arch, float]:
        """What the controller regresses: each told arch's reward (or its metric, with ``target="metric"``)."""
        return dict(self._observed)

    def predict(self, archs: list[Arch]) -> np.ndarray:
        """Controller scores (standardised predicted reward); zeros before any training."""
        if self._model is None or not archs:
            return np.zeros(len(archs))
        with torch.no_grad():
            return self._model(self._codes(archs)).numpy().astype(np.float64)

    # -- ask / tell -------------------------------------------------------------------------------
    def ask(self, n: int) -> list[Arch]:
        self.fit_controller()
        pool = self.domain.sample(self._rng, max(self.pool, n), exclude=self._seen)
        n = min(n, len(pool))
        n_random = round(self.epsilon * n) if self._model is not None else n
        scores = self.predict(pool)
        if self.target == "metric" and self._model is not None:  # predicted accuracy x known latency term
            mu, sd = self._scale
            scores = np.array([(mu + sd * s) * self.domain.latency_factor.get(a, 1.0) for s, a in zip(scores, pool, strict=True)])
        order = sorted(range(len(pool)), key=lambda i: (-scores[i], i))
        top = [pool[i] for i in order[: n - n_random]]
        rest = [pool[i] for i in order[n - n_random :]]
        picks: list[int] = list(self._rng.permutation(len(rest))[:n_random]) if rest else []
        out = top + [rest[i] for i in picks]
        self._seen.update(out)
        self.episode += 1
        return out

    def tell(self, arch: Arch, reward: float, info: dict[str, Any] | None = None) -> None:
        self._seen.add(arch)
        if self.target == "metric" and info is not None and "metric" in info:
            self._observed[arch] = float(info["metric"])
        else:
            self._observed[arch] = float(reward)
