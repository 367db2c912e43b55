"""Q-networks by observation shape: the Nature CNN on stacked uint8 frames, the MLP on vectors."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from mltoolkit.core.errors import DataError  # noqa: E402
from mltoolkit.rl.networks import NatureCNN, QNetwork, make_q_network, network_kind, parameter_count  # noqa: E402


def test_nature_cnn_maps_uint8_stacks_to_one_value_per_action():
    network = NatureCNN((4, 84, 84), n_actions=6)
    frames = torch.randint(0, 256, (5, 4, 84, 84), dtype=torch.uint8)
    q = network(frames)
    assert q.shape == (5, 6) and q.dtype == torch.float32
    assert network.head[0].in_features == 3136  # 64 x 7 x 7, as in Mnih et al. (2015)
    assert torch.allclose(q, network(frames.float()))  # the scaling to [0, 1] happens inside: same input, same Q


def test_nature_cnn_takes_other_frame_sizes_down_to_36_pixels():
    assert NatureCNN((3, 36, 50), 2)(torch.zeros(1, 3, 36, 50, dtype=torch.uint8)).shape == (1, 2)


def test_auto_chooses_by_shape_and_a_mismatched_choice_names_the_shape():
    assert network_kind("auto", (4, 84, 84)) == "cnn" and network_kind("auto", (8,)) == "mlp"
    assert isinstance(make_q_network("auto", (4,), 2, (16,)), QNetwork)
    assert isinstance(make_q_network("auto", (4, 84, 84), 2, (16,)), NatureCNN)
    with pytest.raises(DataError, match=r"\(4, 84, 84\)"):
        network_kind("mlp", (4, 84, 84))
    with pytest.raises(DataError, match=r"\(8,\)"):
        network_kind("cnn", (8,))
    with pytest.raises(DataError, match=r"\(4, 20, 20\)"):
        network_kind("auto", (4, 20, 20))


def test_parameters_are_counted_without_allocating():
    assert parameter_count("cnn", (4, 84, 84), 6, ()) == sum(p.numel() for p in NatureCNN((4, 84, 84), 6).parameters())
    assert parameter_count("cnn", (4, 84, 84), 6, ()) == 1_687_206  # the Nature network for 6 actions
    assert parameter_count("mlp", (4,), 2, (64, 64)) == (4 + 1) * 64 + 65 * 64 + 65 * 2
