"""Unit tests of the MMSA building blocks: encoders, losses, hypergraph and memory bank.

Batches are built from real molecules (RDKit graphs and ETKDG conformers); images are random
uint8 arrays since only shapes matter here. Everything runs on CPU with tiny sizes.
"""

from __future__ import annotations

import math

import pytest
import torch

from helpers import NAMED_SMILES as SMILES
from helpers import molecule_batch, molecule_data
from mmsa.features.graph import BOND_TYPE_SELF_LOOP, atom_feature_dims
from mmsa.models.comenet import ComENetEncoder, edge_frame_angles
from mmsa.models.fusion import AttentionFusion, reconstruction_loss
from mmsa.models.geometry import ConformerEncoder, SchNetEncoder, atomic_numbers, radius_interaction_graph
from mmsa.models.gin import GINConv, GINEncoder, uniform_dropout
from mmsa.models.knn_hypergraph import HypergraphEncoder, faiss_available, knn_hyperedges, knn_similarity
from mmsa.models.losses import info_nce, pairwise_info_nce
from mmsa.models.memory import MemoryBank, sinkhorn
from mmsa.models.resnet import ResNetEncoder

pytestmark = pytest.mark.usefixtures("single_thread")


# --------------------------------------------------------------------------- encoders


@pytest.mark.parametrize("size", [32, 48])
def test_image_encoder_shapes_and_uint8_scaling(size: int) -> None:
    torch.manual_seed(0)
    enc = ResNetEncoder(layers=[1, 1, 1, 1], width=8).eval()
    assert enc.out_dim == 64
    images = torch.randint(0, 256, (3, 3, size, size), dtype=torch.uint8)
    out = enc(images)
    assert out.shape == (3, 64)
    torch.testing.assert_close(out, enc(images.float() / 255.0))


def test_resnet18_layout() -> None:
    enc = ResNetEncoder(layers=[2, 2, 2, 2], width=4)
    assert [len(stage) for stage in enc.stages] == [2, 2, 2, 2]
    assert enc.out_dim == 32
    assert enc(torch.zeros(2, 3, 40, 40, dtype=torch.uint8)).shape == (2, 32)


@pytest.mark.parametrize("feature_set", ["hu", "rich"])
@pytest.mark.parametrize(("jk", "pool"), [("last", "mean"), ("sum", "sum"), ("concat", "max")])
def test_gin_shapes(feature_set: str, jk: str, pool: str) -> None:
    torch.manual_seed(0)
    batch = molecule_batch(["aspirin", "caffeine", "ethanol"], feature_set)
    assert batch.x.size(1) == len(atom_feature_dims(feature_set))
    enc = GINEncoder(feature_set, num_layers=3, emb_dim=16, jk=jk, pool=pool)
    node, graph = enc(batch.x, batch.edge_index, batch.edge_attr, batch.batch, batch.num_graphs)
    expected = 16 * 4 if jk == "concat" else 16
    assert enc.out_dim == expected
    assert node.shape == (batch.num_nodes, expected)
    assert graph.shape == (3, expected)
    assert torch.isfinite(graph).all()


def test_uniform_dropout_keeps_each_value_scaled_or_zeroes_it_at_rate_p() -> None:
    h = torch.rand(2000, 64) + 0.5
    torch.manual_seed(3)
    out = uniform_dropout(h, 0.3, training=True)
    kept = out != 0
    assert torch.allclose(out[kept], h[kept] / 0.7)
    assert abs(1.0 - kept.float().mean().item() - 0.3) < 0.01
    torch.manual_seed(3)
    assert torch.equal(uniform_dropout(h, 0.3, training=True), out)  # the seed decides the mask
    assert uniform_dropout(h, 0.3, training=False) is h and uniform_dropout(h, 0.0, training=True) is h
    assert torch.equal(uniform_dropout(h, 1.0, training=True), torch.zeros_like(h))


def test_gin_conv_matches_hu_formula() -> None:
    """h_i' = MLP(sum_{j in N(i)} (h_j + e_ij) + h_i + e_self), e_self of bond type 4."""
    torch.manual_seed(0)
    data = molecule_data(SMILES["ethanol"])
    conv = GINConv(8, [6, 3])
    h = torch.randn(data.num_nodes, 8)
    out = conv(h, data.edge_index, data.edge_attr)
    emb = conv.bond_encoder
    self_loop = emb(torch.tensor([[BOND_TYPE_SELF_LOOP, 0]]))[0]
    expected = []
    for i in range(data.num_nodes):
        agg = h[i] + self_loop
        for e in range(data.edge_index.size(1)):
            if int(data.edge_index[1, e]) == i:
                j = int(data.edge_index[0, e])
                agg = agg + h[j] + emb(data.edge_attr[e : e + 1])[0]
        expected.append(conv.mlp(agg))
    torch.testing.assert_close(out, torch.stack(expected))


GEOMETRY_ENCODERS = {
    "schnet": lambda: SchNetEncoder(hidden_channels=16, num_filters=16, num_interactions=2, cutoff=5.0),
    "comenet": lambda: ComENetEncoder(hidden_channels=16, middle_channels=8, num_layers=2, cutoff=5.0),
}


def rotation(seed: int) -> torch.Tensor:
    """A random proper rotation (det +1): ComENet's torsions are signed, so mirrors must not slip in."""
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed)))
    return q * torch.linalg.det(q)  # det(-q) = -det(q) in 3D


@pytest.mark.parametrize("name", list(GEOMETRY_ENCODERS))
def test_geometry_encoder_shapes_and_masked_rows(name: str) -> None:
    torch.manual_seed(0)
    batch = molecule_batch(["aspirin", "caffeine", "ethanol", "benzene", "menthol"], no_conf=(1,))
    enc: ConformerEncoder = GEOMETRY_ENCODERS[name]()
    z = atomic_numbers(batch.x)
    assert int(z.min()) >= 1 and int(z.max()) <= 118
    out = enc(z, batch.pos, batch.batch, batch.conf_mask, batch.num_graphs)
    assert out.shape == (5, 16) and out.dtype == torch.float32 and enc.out_dim == 16
    assert torch.equal(out[1], torch.zeros(16))
    assert out[[0, 2, 3, 4]].abs().sum(dim=1).gt(0).all()
    # Moving the failed molecule's atoms changes nothing.
    pos = batch.pos.clone()
    pos[batch.batch == 1] = torch.randn(int((batch.batch == 1).sum()), 3)
    torch.testing.assert_close(
        enc(z, pos, batch.batch, batch.conf_mask, batch.num_graphs), out, rtol=0, atol=0
    )
    # Rigid motion invariance of every valid molecule.
    for seed in range(3):
        moved = batch.pos @ rotation(seed).t() + torch.tensor([1.0, -2.0, 3.0]) * seed
        torch.testing.assert_close(enc(z, moved, batch.batch, batch.conf_mask, 5), out, atol=1e-4, rtol=1e-4)
    # Gradients reach every parameter.
    out.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())


@pytest.mark.parametrize("name", list(GEOMETRY_ENCODERS))
def test_geometry_encoder_takes_molecules_without_edges(name: str) -> None:
    # Methane and water as heavy atoms only: one atom each, so the interaction graph is empty.
    out = GEOMETRY_ENCODERS[name]()(torch.tensor([6, 8]), torch.randn(2, 3), torch.tensor([0, 1]))
    assert out.shape == (2, 16) and torch.isfinite(out).all()


def test_only_comenet_tells_a_conformer_from_its_mirror_image() -> None:
    torch.manual_seed(0)
    batch = molecule_batch(["menthol", "nicotine"])
    z, mirror = atomic_numbers(batch.x), batch.pos * torch.tensor([-1.0, 1.0, 1.0])
    for name, chiral in [("schnet", False), ("comenet", True)]:
        enc = GEOMETRY_ENCODERS[name]()
        out, out_mirror = enc(z, batch.pos, batch.batch), enc(z, mirror, batch.batch)
        assert (out - out_mirror).abs().amax(dim=1).gt(1e-3).all() == chiral, name


def test_comenet_edge_angles_by_hand() -> None:
    # i = atom 0 at the origin; its nearest neighbour 1 on x, second-nearest 2 on y; atom 3 on z
    # (edge 3 -> 0 along z), and atom 4 closer to 3 than 0 is, so it is 3's reference.
    pos = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1.1, 0], [0, 0, 1.2], [0, 0.8, 2.0]])
    edge_index, _ = radius_interaction_graph(pos, torch.zeros(5, dtype=torch.long), cutoff=10.0)
    dist, theta, phi, tau = edge_frame_angles(pos, edge_index)
    edge = {(int(j), int(i)): e for e, (j, i) in enumerate(edge_index.t())}
    half_pi = torch.tensor(math.pi / 2)
    e = edge[(3, 0)]
    # theta: between 3 -> 0 (-z) and 0 -> 1 (+x); phi: about z from the plane of 1 (x) to that of
    # 2 (y), counter-clockwise; tau: about z from the plane of 3 - 4 (-y - z) to that of 1 (x).
    torch.testing.assert_close(dist[e], torch.tensor(1.2))
    torch.testing.assert_close(torch.stack([theta[e], phi[e], tau[e]]), half_pi.expand(3))
    # Edge 1 -> 0: the neighbour is 0's nearest, so theta = pi and the azimuth is 0 by definition.
    e = edge[(1, 0)]
    torch.testing.assert_close(torch.stack([theta[e], phi[e]]), torch.tensor([math.pi, 0.0]))


@pytest.mark.parametrize("cap", [None, 3])
def test_radius_graph_matches_brute_force(cap: int | None) -> None:
    torch.manual_seed(0)
    counts = [5, 1, 7, 4]
    batch = torch.cat([torch.full((n,), g) for g, n in enumerate(counts)])
    pos = torch.randn(sum(counts), 3) * 1.5
    edge_index, weight = radius_interaction_graph(pos, batch, cutoff=2.5, max_num_neighbors=cap)
    got = {(int(j), int(i)) for j, i in edge_index.t()}
    expected = set()
    for i in range(pos.size(0)):
        cand = [
            (float((pos[i] - pos[j]).norm()), j)
            for j in range(pos.size(0))
            if j != i and batch[j] == batch[i] and float((pos[i] - pos[j]).norm()) < 2.5
        ]
        cand.sort()
        if cap is not None:
            cand = cand[:cap]
        expected |= {(j, i) for _, j in cand}
    assert got == expected
    torch.testing.assert_close(weight, (pos[edge_index[0]] - pos[edge_index[1]]).norm(dim=-1))


# --------------------------------------------------------------------------- losses


def test_info_nce_hand_computed() -> None:
    a = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    b = [[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
    t = 0.5
    r2 = math.sqrt(2.0)
    # S_ij = cos(a_i, b_j) / t, written out by hand.
    s = [
        [1 / t, (1 / r2) / t, 0.0],
        [0.0, (1 / r2) / t, 1 / t],
        [(1 / r2) / t, 1 / t, (1 / r2) / t],
    ]
    rows = [-s[i][i] + math.log(sum(math.exp(s[i][j]) for j in range(3))) for i in range(3)]
    cols = [-s[i][i] + math.log(sum(math.exp(s[j][i]) for j in range(3))) for i in range(3)]
    expected = 0.5 * (sum(rows) / 3 + sum(cols) / 3)
    assert expected == pytest.approx(0.9905556060000382, abs=1e-12)
    got = info_nce(torch.tensor(a), torch.tensor(b), temperature=t)
    assert float(got) == pytest.approx(expected, abs=1e-6)
    # Scale invariance (cosine) and float64 inputs are computed in float32.
    got64 = info_nce(torch.tensor(a, dtype=torch.float64) * 3, torch.tensor(b), t)
    assert got64.dtype == torch.float32 and float(got64) == pytest.approx(expected, abs=1e-6)


def test_info_nce_mask_and_degenerate_cases() -> None:
    torch.manual_seed(0)
    a = torch.randn(5, 4, requires_grad=True)
    b = torch.randn(5, 4)
    mask = torch.tensor([True, False, True, True, False])
    torch.testing.assert_close(info_nce(a, b, 0.2, mask), info_nce(a[mask], b[mask], 0.2))
    zero = info_nce(a, b, 0.2, torch.tensor([False, True, False, False, False]))
    assert zero.detach().item() == 0.0 and zero.requires_grad
    zero.backward()
    assert torch.equal(a.grad, torch.zeros_like(a))
    pairs = pairwise_info_nce(
        {"graph": a, "image": b, "geometry": b * 2}, {"image": mask, "geometry": None}, 0.2
    )
    assert list(pairs) == ["graph-image", "graph-geometry", "image-geometry"]
    torch.testing.assert_close(pairs["graph-image"], info_nce(a, b, 0.2, mask))


def test_fusion_masks_missing_modalities_and_reconstruction() -> None:
    torch.manual_seed(0)
    fusion = AttentionFusion(8, ["graph", "image", "geometry"], num_heads=2, dropout=0.0).eval()
    tokens = {m: torch.randn(4, 8) for m in ["graph", "image", "geometry"]}
    masks = {
        "graph": None,
        "image": torch.tensor([True, False, True, False]),
        "geometry": torch.tensor([False, False, True, True]),
    }
    out = fusion(tokens, masks)
    assert out.fused.shape == (4, 8) and set(out.reconstructions) == set(tokens)
    changed = dict(tokens)
    changed["image"] = tokens["image"] + 100 * torch.tensor([[0.0], [1.0], [0.0], [1.0]])
    torch.testing.assert_close(fusion(changed, masks).fused, out.fused)
    nothing = {m: torch.zeros(4, dtype=torch.bool) for m in tokens}
    assert torch.isfinite(fusion(tokens, nothing).fused).all()
    loss = reconstruction_loss(out.reconstructions, tokens, masks)
    assert loss.ndim == 0 and 0.0 <= loss.item() <= 2.0


# --------------------------------------------------------------------------- hypergraph


needs_faiss = pytest.mark.skipif(not faiss_available(), reason="faiss is optional: pip install '.[faiss]'")
BACKENDS = ["torch", pytest.param("faiss", marks=needs_faiss)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("n", "k", "centres"), [(12, 4, None), (7, 10, None), (10, 3, 6)])
def test_knn_hyperedges_match_brute_force(n: int, k: int, centres: int | None, backend: str) -> None:
    torch.manual_seed(n)
    x = torch.randn(n, 5)
    hyperedge_index = knn_hyperedges(x, k, num_centres=centres, backend=backend)
    c = n if centres is None else centres
    got: dict[int, set[int]] = {}
    for node, edge in hyperedge_index.t().tolist():
        got.setdefault(edge, set()).add(node)
    expected = {}
    for i in range(c):
        sims = []
        for j in range(n):
            if j == i:
                continue
            dot = sum(float(x[i, d]) * float(x[j, d]) for d in range(5))
            cos = dot / (float(x[i].norm()) * float(x[j].norm()))
            sims.append((cos, j))
        sims.sort(reverse=True)
        expected[i] = {i} | {j for _, j in sims[:k]}  # the centre and its k neighbours
    assert got == expected
    assert hyperedge_index.size(1) == c * min(k + 1, n)


def brute_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarities in float64, written out (not the code under test)."""
    a, b = a.double(), b.double()
    return (a @ b.t()) / (a.norm(dim=1, keepdim=True) * b.norm(dim=1).unsqueeze(0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_hyperedge_similarities_are_those_of_the_listed_members(backend: str) -> None:
    """One search gives the hypergraph and its similarities: each hyperedge's entries are the
    cosine of the centre to the member listed at that place (1 for the centre itself)."""
    x = torch.randn(60, 6, generator=torch.Generator().manual_seed(3))
    index, similarity = knn_hyperedges(x, 4, num_centres=50, backend=backend, with_similarity=True)
    nodes = index[0].view(50, 5)
    cosine = brute_cosine(x, x)
    expected = torch.stack([cosine[e, nodes[e]] for e in range(50)])
    expected[:, 0] = 1.0
    torch.testing.assert_close(similarity.double(), expected, rtol=0, atol=1e-5)
    assert torch.equal(index, knn_hyperedges(x, 4, num_centres=50, backend=backend))  # same hypergraph


@pytest.mark.parametrize("backend", BACKENDS)
def test_held_out_rows_get_the_similarities_of_their_k_nearest_base_rows(backend: str) -> None:
    generator = torch.Generator().manual_seed(4)
    query, base = torch.randn(9, 6, generator=generator), torch.randn(30, 6, generator=generator)
    expected = brute_cosine(query, base).topk(5, dim=1).values
    got = knn_similarity(query, base, 5, chunk_rows=4, backend=backend)
    torch.testing.assert_close(got.double(), expected, rtol=0, atol=1e-5)
    assert knn_similarity(query, base[:3], 5, backend=backend).shape == (9, 3)  # k capped by the base


def test_hypergraph_encoder_anchor_nodes_act_only_through_the_hyperedges_they_join() -> None:
    torch.manual_seed(0)
    enc = HypergraphEncoder(8, num_layers=2, k=2)
    x = torch.zeros(6, 8)
    x[:, :4] = torch.rand(6, 4) + 0.1  # every pair of molecules has cosine similarity > 0
    x.requires_grad_()
    far = torch.zeros(1, 8)
    far[0, 7] = 1.0  # cosine 0 with every molecule: no hyperedge takes it
    near = 3 * x[:1].detach()  # molecule 0's direction: molecule 0's hyperedge takes it
    alone = enc(x)
    assert alone.shape == (6, 8)
    torch.testing.assert_close(enc(x, far), alone, rtol=0, atol=1e-6)
    hyperedges = knn_hyperedges(torch.cat([x.detach(), near]), 2, num_centres=6)
    assert hyperedges[0, :2].tolist() == [0, 6]  # molecule 0, then the anchor (node 6)
    assert not torch.allclose(enc(x, near)[0], alone[0], atol=1e-4)
    anchors = near.clone().requires_grad_()  # the memory bank moves anchors, not the gradient
    enc(x, anchors).sum().backward()
    assert anchors.grad is None and x.grad is not None and torch.isfinite(x.grad).all()


# --------------------------------------------------------------------------- memory


def test_memory_update_follows_momentum_rule() -> None:
    torch.manual_seed(0)
    bank = MemoryBank(num_anchors=5, dim=4, momentum=0.9, seed=3)
    again = MemoryBank(num_anchors=5, dim=4, momentum=0.9, seed=3)
    assert torch.equal(bank.anchors, again.anchors)  # deterministic given the seed
    before = bank.anchors.clone()
    emb = torch.randn(6, 4)
    assign = torch.tensor([0, 2, 2, 4, 0, 2])
    bank.update(emb, assign)
    z = emb / emb.norm(dim=1, keepdim=True)
    for j in range(5):
        members = [i for i in range(6) if int(assign[i]) == j]
        if not members:
            torch.testing.assert_close(bank.anchors[j], before[j], rtol=0, atol=0)
            continue
        mean = sum(z[i] for i in members) / len(members)
        moved = 0.9 * before[j] + 0.1 * mean
        torch.testing.assert_close(bank.anchors[j], moved / moved.norm())


def test_memory_forward_updates_only_in_training() -> None:
    torch.manual_seed(0)
    bank = MemoryBank(num_anchors=4, dim=6, momentum=0.5)
    emb = torch.randn(8, 6, requires_grad=True)
    before = bank.anchors.clone()
    bank.eval()
    loss, _ = bank(emb)
    assert torch.equal(bank.anchors, before)
    bank.train()
    expected = before.clone()
    reference = MemoryBank(num_anchors=4, dim=6, momentum=0.5)
    targets = reference.targets(emb)
    reference.update(emb, targets.argmax(dim=1))
    expected = reference.anchors
    loss_train, _ = bank(emb)
    torch.testing.assert_close(bank.anchors, expected)
    torch.testing.assert_close(loss_train, loss)
    loss_train.backward()  # the in-place anchor update must not break autograd
    assert emb.grad is not None


def test_memory_alignment_does_not_collapse() -> None:
    torch.manual_seed(0)
    bank = MemoryBank(num_anchors=8, dim=16, temperature=0.1, momentum=0.9)
    # A fully collapsed batch right on one anchor: the balanced targets still use every anchor.
    collapsed = bank.anchors[0].repeat(32, 1)
    q = bank.targets(collapsed)
    torch.testing.assert_close(q.sum(dim=0), torch.full((8,), 32 / 8))
    torch.testing.assert_close(q.sum(dim=1), torch.ones(32))
    # Random batch: Sinkhorn balances the columns.
    q = sinkhorn(torch.randn(64, 8).clamp(-1, 1), epsilon=0.05, iterations=50)
    torch.testing.assert_close(q.sum(dim=0), torch.full((8,), 64 / 8), atol=1e-2, rtol=1e-2)
    # Optimising free embeddings under the alignment loss spreads them over the anchors.
    emb = torch.nn.Parameter(torch.randn(64, 16) * 0.01 + torch.randn(1, 16))
    assert bank.soft_assignment(emb.detach()).argmax(dim=1).unique().numel() == 1
    opt = torch.optim.Adam([emb], lr=0.05)
    for _ in range(60):
        opt.zero_grad()
        loss, _ = bank(emb)
        loss.backward()
        opt.step()
    used = bank.soft_assignment(emb.detach()).argmax(dim=1).unique().numel()
    assert used == 8


def test_knn_hyperedges_in_chunks_equal_the_whole() -> None:
    from mmsa.models.knn_hypergraph import knn_hyperedges

    x = torch.randn(37, 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(knn_hyperedges(x, 4), knn_hyperedges(x, 4, chunk_rows=8))


@needs_faiss
@pytest.mark.parametrize(("n", "k", "centres"), [(500, 11, None), (500, 6, 120), (3, 5, None), (40, 1, None)])
def test_knn_hyperedges_faiss_and_torch_give_the_same_hyperedges(n: int, k: int, centres: int | None) -> None:
    x = torch.randn(n, 32, generator=torch.Generator().manual_seed(n + k))
    torch_edges = knn_hyperedges(x, k, num_centres=centres, chunk_rows=64, backend="torch")
    assert torch.equal(knn_hyperedges(x, k, num_centres=centres, backend="faiss"), torch_edges)


@needs_faiss
def test_knn_hyperedges_faiss_puts_each_centre_first_among_duplicates() -> None:
    x = torch.randn(20, 8, generator=torch.Generator().manual_seed(1))
    x = torch.cat([x, x])  # every row ties with its copy
    nodes = knn_hyperedges(x, 3, backend="faiss")[0].view(40, 4)  # 3 neighbours: 4 members
    assert nodes[:, 0].tolist() == list(range(40))
    assert nodes[:, 1].tolist() == [(i + 20) % 40 for i in range(40)]  # then the copy


def test_knn_hyperedges_auto_uses_faiss_only_for_large_sets_and_when_installed(monkeypatch) -> None:
    import mmsa.models.knn_hypergraph as hypergraph

    calls = []
    monkeypatch.setattr(hypergraph, "_faiss_neighbours", lambda *a: calls.append(a) or 1 / 0)
    x = torch.randn(30, 4, generator=torch.Generator().manual_seed(2))
    expected = knn_hyperedges(x, 3, backend="torch")
    assert torch.equal(knn_hyperedges(x, 3), expected)  # 900 similarities: below the threshold
    monkeypatch.setattr(hypergraph, "FAISS_MIN_PAIRS", 900)
    monkeypatch.setattr(hypergraph, "faiss_available", lambda: False)
    assert torch.equal(knn_hyperedges(x, 3), expected)  # large, but faiss is missing: torch
    monkeypatch.setattr(hypergraph, "faiss_available", lambda: True)
    with pytest.raises(ZeroDivisionError):
        knn_hyperedges(x, 3)  # large and faiss installed: the faiss path
    assert len(calls) == 1
