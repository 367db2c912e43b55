"""Q-networks chosen by the observation's shape: an MLP (``QNetwork``) for vectors, the Nature CNN for images.

``NatureCNN`` is the network of Mnih et al. (2015): three convolutions (32 8x8 stride 4, 64 4x4
stride 2, 64 3x3 stride 1) and a 512-unit layer. It takes the stacked frames as uint8 and scales them
to [0, 1] itself, so the replay memory, the batch and its transfer to a GPU stay 4x smaller than
float32, and a saved network needs no separate preprocessing step to be used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from mltoolkit.core.errors import DataError

NetworkKind = Literal["auto", "mlp", "cnn"]
MIN_SIDE = 36  # the smallest frame the three convolutions leave at least one pixel of


class QNetwork(nn.Module):
    """A multilayer perceptron: observation vector in, one Q-value per action out."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: Sequence[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = obs_dim
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, n_actions))
        self.net = nn.Sequential(*layers)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


class NatureCNN(nn.Module):
    """Stacked uint8 frames ``(N, stack, H, W)`` in, one Q-value per action out."""

    def __init__(self, obs_shape: Sequence[int], n_actions: int) -> None:
        super().__init__()
        channels, height, width = obs_shape
        self.features = nn.Sequential(
            nn.Conv2d(channels, 32, kernel_size=8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, kernel_size=3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        flat = 64 * _conv_side(height) * _conv_side(width)  # 3136 for 84x84
        self.head = nn.Sequential(nn.Linear(flat, 512), nn.ReLU(), nn.Linear(512, n_actions))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        scaled = obs.to(self.head[0].weight.dtype) / 255.0  # float32 in training, float64 for predict's answers
        return self.head(self.features(scaled))


def _conv_side(side: int) -> int:
    """Pixels left along one side after the three convolutions."""
    return ((side - 8) // 4 + 1 - 4) // 2 + 1 - 2


def network_kind(kind: NetworkKind, obs_shape: Sequence[int]) -> Literal["mlp", "cnn"]:
    """``auto``: the CNN for ``(stack, H, W)`` images, the MLP for vectors; a kind that cannot take it is exit 3."""
    shape = tuple(obs_shape)
    if kind == "auto":
        kind = "cnn" if len(shape) == 3 else "mlp"
    if kind == "mlp" and len(shape) != 1:
        raise DataError(f"--network mlp takes a flat observation vector, not shape {shape}; use --network cnn or auto")
    if kind == "cnn" and (len(shape) != 3 or min(shape[1:]) < MIN_SIDE):
        raise DataError(
            f"--network cnn takes stacked frames (stack, height, width) of at least {MIN_SIDE}x{MIN_SIDE}, "
            f"not shape {shape}"
        )
    return kind


def make_q_network(kind: NetworkKind, obs_shape: Sequence[int], n_actions: int, hidden: Sequence[int]) -> nn.Module:
    """The Q-network for this observation shape (``hidden`` sizes the MLP only)."""
    if network_kind(kind, obs_shape) == "cnn":
        return NatureCNN(obs_shape, n_actions)
    return QNetwork(int(obs_shape[0]), n_actions, hidden)


def parameter_count(kind: NetworkKind, obs_shape: Sequence[int], n_actions: int, hidden: Sequence[int]) -> int:
    """Weights of ``make_q_network(...)``, counted on the meta device: no memory is allocated."""
    with torch.device("meta"):
        network = make_q_network(kind, obs_shape, n_actions, hidden)
    return sum(parameter.numel() for parameter in network.parameters())
