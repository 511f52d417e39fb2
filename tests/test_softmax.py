"""The action-axis softmax: torch's values and gradients on both routes, and which route a tensor takes."""

import pytest
import torch

from rllib_uas.modules import softmax as sm


@pytest.mark.parametrize("lanes", [0, 16])  # torch's kernel for every axis / the transposed route below 16
@pytest.mark.parametrize("shape", [(7, 3, 9), (5, 4, 2, 14), (6, 15), (4, 3, 16), (3, 2, 28), (0, 4, 14)])
def test_values_and_gradients_are_torchs(monkeypatch, lanes, shape):
    monkeypatch.setattr(sm, "_lanes", lanes)
    assert sm.short_axis(torch.zeros(shape)) == (shape[-1] < lanes)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g) * 3
    x[..., 0] = -1e10  # a masked action, as the agent networks mask them
    w = torch.randn(shape, generator=g)
    for ours, theirs in ((sm.softmax, torch.softmax), (sm.log_softmax, torch.log_softmax)):
        a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
        ya, yb = ours(a), theirs(b, -1)
        assert ya.shape == yb.shape and torch.allclose(ya, yb, rtol=1e-6, atol=1e-6)
        (ya * w).sum().backward()
        (yb * w).sum().backward()
        assert torch.allclose(a.grad, b.grad, rtol=1e-5, atol=1e-6)


def test_the_route_follows_the_cpus_register_width(monkeypatch):
    monkeypatch.setattr(sm, "_lanes", None)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert sm.lanes() == 16
    monkeypatch.setattr(sm, "_lanes", None)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "NEON")  # not measured: torch's
    assert sm.lanes() == 0 and not sm.short_axis(torch.zeros(4, 3))
