"""The descriptor term: robust standardization, masked targets, a random share per step, and a
head on the GIN that learns them."""

import numpy as np
import pytest
import torch

from helpers import molecule_batch
from mmsa.models import MMSAConfig, MMSAModel
from mmsa.models.descriptor_term import DescriptorTerm, robust_scaling

pytestmark = pytest.mark.usefixtures("single_thread")
ONLY_DESCRIPTORS = {  # a small GIN-only model whose one loss is the descriptor term
    "use_image": False,
    "use_geometry": False,
    "embed_dim": 16,
    "gnn_layers": 2,
    "gnn_dim": 32,
    "fusion_heads": 2,
    "contrastive": False,
    "fusion_reconstruction": False,
    "hypergraph": False,
    "memory": False,
    "descriptors": True,
}


def test_robust_scaling_is_the_median_and_the_iqr_in_sigmas_ignoring_nan():
    nan = np.nan
    raw = np.array([[1.0, 5.0, nan], [2.0, 5.0, nan], [3.0, 5.0, nan], [4.0, 5.0, nan], [nan, 5.0, nan]])
    centre, scale = robust_scaling(raw)
    # column 0: median of 1..4 is 2.5, quartiles 1.75 and 3.25 (linear), IQR 1.5 = 1.349 sigma;
    # column 1 is constant (no spread: scale 1), column 2 never observed (0 and 1)
    assert centre.tolist() == [2.5, 5.0, 0.0]
    assert scale[0] == pytest.approx(1.5 / 1.349) and scale[1:].tolist() == [1.0, 1.0]


def test_targets_are_standardized_clipped_and_a_failed_descriptor_is_masked():
    term = DescriptorTerm(4, 3, rate=0.5, clip=6.0)
    term.centre.copy_(torch.tensor([10.0, 0.0, 0.0], dtype=torch.float64))
    term.scale.copy_(torch.tensor([2.0, 1.0, 1.0], dtype=torch.float64))
    z, valid = term.standardize(torch.tensor([[14.0, 1e30, float("nan")]], dtype=torch.float64))
    assert z.tolist() == [[2.0, 6.0, 0.0]] and valid.tolist() == [[True, True, False]]
    assert z.dtype == torch.float32


def test_training_reads_a_random_share_of_the_valid_targets_evaluation_all_of_them():
    torch.manual_seed(0)
    term = DescriptorTerm(8, 200, rate=0.15, clip=6.0)
    raw = torch.randn(64, 200, dtype=torch.float64)
    raw[:, :20] = float("nan")  # 20 descriptors failed for every molecule: 64 x 180 valid targets
    embedding = torch.randn(64, 8)
    total, count = term.eval().sums(embedding, raw)
    assert count.item() == 64 * 180
    with torch.no_grad():
        by_hand = (term.head(embedding)[:, 20:] - raw[:, 20:].float().clamp(-6, 6)).square().sum()
    assert total.item() == pytest.approx(by_hand.item(), rel=1e-6)
    _, share = term.train().sums(embedding, raw)
    assert 0.13 < share.item() / (64 * 180) < 0.17  # 15% of 11,520 targets, within 4 sigma


def test_the_term_learns_the_descriptors_through_the_gin():
    batch = molecule_batch()  # 16 real molecules with their RDKit descriptors

    def model() -> MMSAModel:
        torch.manual_seed(0)
        built = MMSAModel(MMSAConfig.from_dict(ONLY_DESCRIPTORS))
        built.descriptor_term.set_scaling(batch.descriptors.numpy())
        return built

    trained = model().train()
    first = trained(batch)
    assert set(first["losses"]) == {"descriptors"}
    first["loss"].backward()
    gin = [p.grad for p in trained.graph_encoder.parameters()]
    assert all(g is not None for g in gin) and sum(float(g.abs().sum()) for g in gin) > 0
    opt = torch.optim.Adam(trained.parameters(), lr=3e-3)
    for _ in range(200):
        opt.zero_grad()
        trained(batch)["loss"].backward()
        opt.step()
    after = trained.eval()(batch)["losses"]["descriptors"].item()  # every valid target
    untrained = model().eval()(batch)["losses"]["descriptors"].item()
    assert after < 0.5 * untrained, (untrained, after)
