"""score_function_loo in the layouts of LLM RL trainers (TRL's and OpenRLHF's RLOO): K
completions per prompt in a flat [B * K] tensor (group_size=), in [K, B] (dim=0), NaN rewards
left out by a mask, and groups of one. The reference is TRL's RLOO advantage written as TRL
writes it, in float64: rewards minus the mean of the group's other rewards, loss
-(advantage * log_prob).mean()."""

from __future__ import annotations

import pytest
import torch

import gradext

B, K = 6, 4


def _trl_rloo_loss(rewards_flat, log_prob_flat, k):
    """TRL's RLOO trainer: rewards of prompt i's completions at i * k ... i * k + k - 1."""
    grouped = rewards_flat.view(-1, k)
    baseline = (grouped.sum(1, keepdim=True) - grouped) / (k - 1)
    advantages = (grouped - baseline).flatten()
    return -(advantages.detach() * log_prob_flat).mean()


def _leaves(*shape, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(*shape, generator=g, dtype=torch.float64).to(device)
    log_prob = torch.randn(*shape, generator=g, dtype=torch.float64).to(device)
    return rewards, log_prob.requires_grad_()


def test_flat_layout_with_group_size_is_trl_rloo(implementation, device):
    rewards, log_prob = _leaves(B * K, device=device)
    objective = gradext.score_function_loo(rewards, log_prob, group_size=K)
    assert objective.shape == (B,)
    torch.testing.assert_close(objective, rewards.view(B, K).mean(1), rtol=1e-14, atol=0)
    (ours,) = torch.autograd.grad(-objective.mean(), log_prob)
    (trl,) = torch.autograd.grad(_trl_rloo_loss(rewards, log_prob, K), log_prob)
    torch.testing.assert_close(ours, trl, rtol=1e-12, atol=1e-15)


def test_group_size_along_a_later_dim(implementation, device):
    # [2, B * K]: two sequences' worth of flat groups along dim 1 (negative dim too).
    rewards, log_prob = _leaves(2, B * K, device=device, seed=1)
    objective = gradext.score_function_loo(rewards, log_prob, -1, group_size=K)
    assert objective.shape == (2, B)
    (ours,) = torch.autograd.grad(-objective.mean(), log_prob)
    trl_loss = (
        _trl_rloo_loss(rewards[0], log_prob[0], K) + _trl_rloo_loss(rewards[1], log_prob[1], K)
    ) / 2
    (expected,) = torch.autograd.grad(trl_loss, log_prob)
    torch.testing.assert_close(ours, expected, rtol=1e-12, atol=1e-15)


def test_samples_leading_layout_is_dim_0(implementation, device):
    # [K, B]: completion k of prompt b at [k, b] (prompts repeated K times, then stacked).
    rewards, log_prob = _leaves(K, B, device=device, seed=2)
    objective = gradext.score_function_loo(rewards, log_prob, dim=0)
    (ours,) = torch.autograd.grad(-objective.mean(), log_prob)
    flat_rewards = rewards.t().reshape(-1)
    flat_log_prob = log_prob.detach().t().reshape(-1).requires_grad_()
    (trl,) = torch.autograd.grad(_trl_rloo_loss(flat_rewards, flat_log_prob, K), flat_log_prob)
    torch.testing.assert_close(ours, trl.view(B, K).t(), rtol=1e-12, atol=1e-15)


def test_flat_layout_without_group_size_is_one_group(implementation, device):
    """The pitfall the argument exists for: a flat tensor with dim=0 is one group of B * K."""
    rewards, log_prob = _leaves(B * K, device=device, seed=3)
    objective = gradext.score_function_loo(rewards, log_prob)
    assert objective.shape == ()
    (one_group,) = torch.autograd.grad(-objective, log_prob)
    (trl,) = torch.autograd.grad(_trl_rloo_loss(rewards, log_prob, K), log_prob)
    assert not torch.allclose(one_group / B, trl)


def test_masked_nan_rewards_leave_the_rest_of_the_group_exact(implementation, device):
    rewards, log_prob = _leaves(B * K, device=device, seed=4)
    rewards[[1, 5, 6, 7]] = torch.nan  # group 0 loses one, group 1 two, group 1 keeps 2
    rewards[[8, 9, 10]] = torch.nan  # group 2 keeps one sample: zero advantage
    rewards[12:16] = torch.nan  # group 3 keeps none
    valid = ~rewards.isnan()
    objective = gradext.score_function_loo(rewards, log_prob, group_size=K, mask=valid)
    (ours,) = torch.autograd.grad(-objective.mean(), log_prob)
    assert ours.isfinite().all() and objective.isfinite().all()
    expected_grad = torch.zeros_like(ours)
    expected_value = torch.zeros(B, dtype=torch.float64, device=device)
    for b in range(B):
        index = torch.arange(b * K, (b + 1) * K, device=device)[valid[b * K : (b + 1) * K]]
        n = len(index)
        if n == 0:
            continue
        kept = rewards[index]
        expected_value[b] = kept.mean()
        if n > 1:  # TRL on the kept completions alone
            expected_grad[index] = -(kept - (kept.sum() - kept) / (n - 1)) / n / B
    torch.testing.assert_close(objective, expected_value, rtol=1e-14, atol=0)
    torch.testing.assert_close(ours, expected_grad, rtol=1e-12, atol=1e-15)
    assert (ours[~valid] == 0).all()


def test_mask_passes_the_pathwise_gradient_of_the_valid_mean(implementation, device):
    rewards, log_prob = _leaves(K, B, device=device, seed=5)
    rewards[0, 0] = torch.nan
    rewards.requires_grad_()
    valid = ~rewards.isnan()
    objective = gradext.score_function_loo(rewards, log_prob, mask=valid)
    (grad_rewards,) = torch.autograd.grad(objective.sum(), rewards)
    expected = valid.double() / valid.sum(0, keepdim=True)
    torch.testing.assert_close(grad_rewards, expected, rtol=1e-15, atol=0)


def test_all_valid_mask_is_the_unmasked_estimator(implementation, device):
    rewards, log_prob = _leaves(K, B, device=device, seed=6)
    masked = gradext.score_function_loo(rewards, log_prob, mask=torch.ones_like(rewards).bool())
    plain = gradext.score_function_loo(rewards, log_prob)
    torch.testing.assert_close(masked, plain, rtol=1e-14, atol=0)
    g_masked = torch.autograd.grad(masked.sum(), log_prob)[0]
    g_plain = torch.autograd.grad(plain.sum(), log_prob)[0]
    torch.testing.assert_close(g_masked, g_plain, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("group_size", [None, 1])
def test_one_sample_per_group_gets_a_zero_advantage(implementation, device, group_size):
    rewards, log_prob = _leaves(1, B, device=device, seed=7)
    if group_size is not None:
        rewards, log_prob = rewards.view(B), log_prob.detach().view(B).requires_grad_()
    objective = gradext.score_function_loo(rewards, log_prob, group_size=group_size)
    torch.testing.assert_close(objective, rewards.reshape(B), rtol=0, atol=0)
    (grad,) = torch.autograd.grad(objective.sum(), log_prob)
    assert (grad == 0).all()


def test_errors(implementation):
    f = torch.randn(B * K)
    op = gradext.score_function_loo
    with pytest.raises(
        ValueError, match=r"group_size 5 does not divide the 24 samples along dim 0"
    ):
        op(f, f, group_size=5)
    with pytest.raises(ValueError, match=r"group_size must be >= 1, got 0"):
        op(f, f, group_size=0)
    with pytest.raises(TypeError, match=r"group_size must be an int, got float"):
        op(f, f, group_size=4.0)
    with pytest.raises(TypeError, match=r"mask must be a bool tensor, got dtype torch.float32"):
        op(f, f, mask=torch.ones_like(f))
    with pytest.raises(ValueError, match=r"mask of shape \(4,\) must have the shape of f \(24,\)"):
        op(f, f, mask=torch.ones(4, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"mask must be a torch.Tensor, got list"):
        op(f, f, mask=[True] * 24)
