#!/usr/bin/env python3
"""tools/make_grpo_fixtures.py: reference values of TRL's GRPO formulas for tests/trainer/test_grpo.c.

Writes tests/fixtures/grpo/advantages.json and tests/fixtures/grpo/loss.json (run from the repository
root: `python3 tools/make_grpo_fixtures.py`; pure Python 3, no numpy or torch needed).

What is transcribed, line for line, from TRL (trl/trainer/grpo_trainer.py, GRPOTrainer):
  - _generate_and_score_completions: grouped mean, std (torch.std, unbiased) for scale_rewards
    group/none or the batch std for batch, is_std_zero = torch.isclose(std, 0), advantages / (std + 1e-4)
    unless scale_rewards == "none", and the logged reward_std / frac_reward_zero_std;
  - get_high_entropy_mask: torch.quantile (linear interpolation) of the active tokens' entropies at
    1 - top_entropy_quantile, then entropies * mask >= threshold, and mask;
  - _compute_loss: log_ratio, token or sequence importance weights (GSPO), coef_1 = exp, coef_2 = clamp,
    the delta cap of two-sided clipping, -min(coef_1 * A, coef_2 * A), the entropy mask, the k3 KL term,
    the four loss_type aggregations, and the logged kl / entropy / clip_ratio values (masked_batch_mean).

The gradient with respect to per_token_logps is not derived by hand: the transcription runs on a small
reverse-mode automatic differentiation of scalars (class V) whose clamp and minimum have torch's
backward rules (clamp passes the gradient where min <= x <= max, ends included; torch.minimum gives
half to each argument on a tie). So the C code, whose gradient is written out by hand, is checked
against autograd applied to TRL's expression.

Inputs are rounded to float32 (the C side receives float arrays); all arithmetic here is in double.
"""
import json
import math
import os
import random
import struct


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


class V:
    """A scalar node of a computation graph: value, parents with local derivatives, gradient."""

    __slots__ = ("v", "parents", "grad")

    def __init__(self, v, parents=()):
        self.v = float(v)
        self.parents = parents  # tuple of (node, d self / d node)
        self.grad = 0.0

    @staticmethod
    def lift(x):
        return x if isinstance(x, V) else V(x)

    def __add__(self, o):
        o = V.lift(o)
        return V(self.v + o.v, ((self, 1.0), (o, 1.0)))

    __radd__ = __add__

    def __sub__(self, o):
        o = V.lift(o)
        return V(self.v - o.v, ((self, 1.0), (o, -1.0)))

    def __rsub__(self, o):
        return V.lift(o) - self

    def __mul__(self, o):
        o = V.lift(o)
        return V(self.v * o.v, ((self, o.v), (o, self.v)))

    __rmul__ = __mul__

    def __truediv__(self, o):
        o = V.lift(o)
        return V(self.v / o.v, ((self, 1.0 / o.v), (o, -self.v / (o.v * o.v))))

    def __neg__(self):
        return V(-self.v, ((self, -1.0),))

    def exp(self):
        e = math.exp(self.v)
        return V(e, ((self, e),))


def backward(out):
    order, seen = [], set()

    def visit(n):
        if id(n) in seen:
            return
        seen.add(id(n))
        for p, _ in n.parents:
            visit(p)
        order.append(n)

    visit(out)
    out.grad = 1.0
    for n in reversed(order):
        for p, d in n.parents:
            p.grad += d * n.grad


def clamp(x, lo=None, hi=None):
    """torch.clamp: gradient 1 where lo <= x <= hi (ends included), else 0."""
    v = x.v
    if lo is not None and v < lo:
        return V(lo, ((x, 0.0),))
    if hi is not None and v > hi:
        return V(hi, ((x, 0.0),))
    return V(v, ((x, 1.0),))


def minimum(a, b):
    """torch.minimum: the smaller argument gets the gradient; a tie splits it in halves."""
    if a.v < b.v:
        return V(a.v, ((a, 1.0), (b, 0.0)))
    if b.v < a.v:
        return V(b.v, ((a, 0.0), (b, 1.0)))
    return V(a.v, ((a, 0.5), (b, 0.5)))


# ------------------------------------------------------------------------------------------------
# TRL, transcribed


def torch_std(xs):
    n = len(xs)
    m = sum(xs) / n
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1)) if n > 1 else float("nan")


def trl_advantages(rewards, num_generations, scale_rewards):
    G = num_generations
    groups = [rewards[i:i + G] for i in range(0, len(rewards), G)]
    # mean_grouped_rewards = rewards.view(-1, G).mean(dim=1).repeat_interleave(G)
    mean_grouped = [sum(g) / G for g in groups for _ in range(G)]
    advantages = [r - m for r, m in zip(rewards, mean_grouped)]
    if scale_rewards in ("group", "none"):
        std_rewards = [torch_std(g) for g in groups for _ in range(G)]
    elif scale_rewards == "batch":
        std_rewards = [torch_std(rewards)] * len(rewards)
    else:
        raise ValueError(scale_rewards)
    is_std_zero = [abs(s) <= 1e-8 for s in std_rewards]  # torch.isclose(std, 0): atol 1e-8, rtol * 0
    if scale_rewards != "none":
        advantages = [a / (s + 1e-4) for a, s in zip(advantages, std_rewards)]
    return {
        "advantages": advantages,
        "reward": sum(mean_grouped) / len(mean_grouped),
        "reward_std": sum(std_rewards) / len(std_rewards),
        "frac_reward_zero_std": sum(is_std_zero) / len(is_std_zero),
    }


def torch_quantile(values, q):
    s = sorted(values)
    rank = q * (len(s) - 1)
    lo, hi = math.floor(rank), math.ceil(rank)
    return s[lo] + (s[hi] - s[lo]) * (rank - lo)


def get_high_entropy_mask(entropies, mask, threshold):
    local = [e for row, mrow in zip(entropies, mask) for e, m in zip(row, mrow) if m]
    if not local:
        return [[0.0] * len(row) for row in entropies]
    entropy_threshold = torch_quantile(local, threshold)
    return [[1.0 if (e * m >= entropy_threshold and m) else 0.0 for e, m in zip(row, mrow)]
            for row, mrow in zip(entropies, mask)]


def trl_compute_loss(logp_in, old, ref, advantages, completion_mask, entropies, a):
    """_compute_loss for one micro-batch; returns (loss value, d loss / d logp, logged metrics)."""
    B, T = len(logp_in), len(logp_in[0])
    per_token_logps = [[V(x) for x in row] for row in logp_in]
    mask = completion_mask
    entropy_mask = (get_high_entropy_mask(entropies, mask, 1 - a["top_entropy_quantile"])
                    if a["top_entropy_quantile"] < 1.0 else None)
    beta = a["beta"]
    if beta != 0.0:
        per_token_kl = [[(ref[b][t] - per_token_logps[b][t]).exp() - (ref[b][t] - per_token_logps[b][t]) - 1
                         for t in range(T)] for b in range(B)]
    log_ratio = [[per_token_logps[b][t] - old[b][t] for t in range(T)] for b in range(B)]
    if a["importance_sampling_level"] == "token":
        log_importance_weights = log_ratio  # (B, T)
    else:
        # (log_ratio * completion_mask).sum(-1) / completion_mask.sum(-1).clamp(min=1.0), unsqueezed: (B, 1)
        log_importance_weights = []
        for b in range(B):
            num = V(0.0)
            for t in range(T):
                num = num + log_ratio[b][t] * mask[b][t]
            log_importance_weights.append([num / max(sum(mask[b]), 1.0)])
    eps_low, eps_high = a["epsilon"], a["epsilon_high"]
    coef_1 = [[x.exp() for x in row] for row in log_importance_weights]
    coef_2 = [[clamp(c, 1 - eps_low, 1 + eps_high) for c in row] for row in coef_1]
    if a["delta"] is not None:
        coef_1 = [[clamp(c, None, a["delta"]) for c in row] for row in coef_1]
    per_token_loss1 = [[c * advantages[b] for c in row] for b, row in enumerate(coef_1)]
    per_token_loss2 = [[c * advantages[b] for c in row] for b, row in enumerate(coef_2)]
    per_token_loss = [[-minimum(x, y) for x, y in zip(r1, r2)] for r1, r2 in zip(per_token_loss1, per_token_loss2)]

    def bcast(row, t):  # a (B, 1) row broadcast against T columns
        return row[t] if len(row) == T else row[0]

    if entropy_mask is not None:
        per_token_loss = [[bcast(per_token_loss[b], t) * entropy_mask[b][t] for t in range(T)] for b in range(B)]
    if beta != 0.0:
        per_token_loss = [[bcast(per_token_loss[b], t) + beta * per_token_kl[b][t] for t in range(T)]
                          for b in range(B)]
    per_token_loss = [[bcast(per_token_loss[b], t) for t in range(T)] for b in range(B)]

    accum = a["gradient_accumulation_steps"]
    masked = [[per_token_loss[b][t] * mask[b][t] for t in range(T)] for b in range(B)]
    total_mask = sum(sum(r) for r in mask)
    if a["loss_type"] == "grpo":
        loss = V(0.0)
        for b in range(B):
            s = V(0.0)
            for t in range(T):
                s = s + masked[b][t]
            loss = loss + s / max(sum(mask[b]), 1.0)
        loss = loss / B / accum
    else:
        s = V(0.0)
        for b in range(B):
            for t in range(T):
                s = s + masked[b][t]
        if a["loss_type"] == "bnpo":
            loss = s / max(total_mask, 1.0) / accum
        elif a["loss_type"] == "dr_grpo":
            loss = s / (B * a["max_completion_length"]) / accum
        elif a["loss_type"] == "dapo":
            loss = s / a["num_items_in_batch"]  # num_processes = 1
        else:
            raise ValueError(a["loss_type"])
    backward(loss)

    completion_token_count = max(total_mask, 1.0)

    def masked_batch_mean(x):
        if len(x[0]) == 1:  # importance_sampling_level == "sequence"
            return sum(r[0] for r in x) / len(x)
        return sum(x[b][t] * mask[b][t] for b in range(B) for t in range(T)) / completion_token_count

    metrics = {}
    if beta != 0.0:
        metrics["kl"] = masked_batch_mean([[k.v for k in row] for row in per_token_kl])
    metrics["entropy"] = masked_batch_mean(entropies)
    c1 = [[c.v for c in row] for row in coef_1]
    is_low = [[float(c < 1 - eps_low and advantages[b] < 0) for c in row] for b, row in enumerate(c1)]
    is_high = [[float(c > 1 + eps_high and advantages[b] > 0) for c in row] for b, row in enumerate(c1)]
    is_region = [[float(lo or hi) for lo, hi in zip(rl, rh)] for rl, rh in zip(is_low, is_high)]
    metrics["clip_ratio/low_mean"] = masked_batch_mean(is_low)
    metrics["clip_ratio/high_mean"] = masked_batch_mean(is_high)
    metrics["clip_ratio/region_mean"] = masked_batch_mean(is_region)
    grad = [[x.grad for x in row] for row in per_token_logps]
    return loss.v, grad, metrics, entropy_mask


# ------------------------------------------------------------------------------------------------
# Inputs


def make_inputs(rng, B, T, lens, advantages, seq_shift, noise):
    """Per-token log-probabilities of a micro-batch: old = logp + per-sequence shift + noise, so that token
    and sequence ratios land on both sides of the clip ranges and of delta."""
    logp = [[f32(-rng.uniform(0.05, 3.0)) for _ in range(T)] for _ in range(B)]
    old = [[f32(logp[b][t] + seq_shift[b] + rng.uniform(-noise, noise)) for t in range(T)] for b in range(B)]
    old[0][2] = logp[0][2]  # a ratio of exactly 1: torch.minimum's tie
    ref = [[f32(logp[b][t] + rng.uniform(-0.5, 0.5)) for t in range(T)] for b in range(B)]
    ent = [[f32(rng.uniform(0.0, 3.0)) for _ in range(T)] for _ in range(B)]
    mask = [[1.0 if t < lens[b] else 0.0 for t in range(T)] for b in range(B)]
    # padding positions hold values the loss must ignore
    for b in range(B):
        for t in range(lens[b], T):
            logp[b][t], old[b][t] = f32(-7.0), f32(3.0)
    return {"B": B, "T": T, "logp": logp, "old_logp": old, "ref_logp": ref, "entropy": ent, "mask": mask,
            "advantages": [f32(x) for x in advantages]}


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out_dir = os.path.join(root, "tests", "fixtures", "grpo")
    os.makedirs(out_dir, exist_ok=True)
    rng = random.Random(2048)

    # advantages: 3 groups of 4 (the last all equal), and a batch of equal rewards
    adv_cases = []
    rewards = [1.0, 2.0, 3.0, 4.5, -2.0, 0.5, 0.5, 7.25, 3.0, 3.0, 3.0, 3.0]
    for scale in ("group", "batch", "none"):
        adv_cases.append({"rewards": rewards, "num_generations": 4, "scale_rewards": scale,
                          **trl_advantages(rewards, 4, scale)})
    equal = [2.0] * 6
    for scale in ("group", "batch"):
        adv_cases.append({"rewards": equal, "num_generations": 3, "scale_rewards": scale,
                          **trl_advantages(equal, 3, scale)})

    # loss: token level on inputs with per-token spread, sequence level on inputs with per-sequence shifts;
    # each loss_type plain (beta 0, symmetric clip) and with every option (beta, epsilon_high, delta, entropy mask)
    B, T = 5, 7
    tok_inputs = make_inputs(rng, B, T, [7, 6, 3, 0, 5], [1.3, -0.7, 0.4, -1.1, -0.5], [0.0] * 5, 0.6)
    seq_inputs = make_inputs(rng, B, T, [7, 5, 3, 6, 0], [-0.9, 1.2, 0.6, -0.4, 0.8],
                             [0.5, -0.45, -0.05, -0.4, 0.0], 0.3)
    variants = [
        {"beta": 0.0, "epsilon": 0.2, "epsilon_high": 0.2, "delta": None, "top_entropy_quantile": 1.0},
        {"beta": 0.04, "epsilon": 0.2, "epsilon_high": 0.28, "delta": 1.35, "top_entropy_quantile": 0.6},
    ]
    loss_cases = []
    for level, inputs in (("token", tok_inputs), ("sequence", seq_inputs)):
        for loss_type in ("grpo", "bnpo", "dr_grpo", "dapo"):
            for v in variants:
                args = dict(v, loss_type=loss_type, importance_sampling_level=level, max_completion_length=8,
                            gradient_accumulation_steps=2, num_items_in_batch=23.0)
                loss, grad, metrics, emask = trl_compute_loss(
                    inputs["logp"], inputs["old_logp"], inputs["ref_logp"], inputs["advantages"], inputs["mask"],
                    inputs["entropy"], args)
                loss_cases.append({"inputs": level, "args": args, "loss": loss, "dlogp": grad, "metrics": metrics,
                                   "entropy_mask": emask})
    header = ("made by tools/make_grpo_fixtures.py from a transcription of TRL's GRPOTrainer "
              "(_generate_and_score_completions, get_high_entropy_mask, _compute_loss); do not edit")
    with open(os.path.join(out_dir, "advantages.json"), "w") as f:
        json.dump({"about": header, "cases": adv_cases}, f, indent=1)
        f.write("\n")
    with open(os.path.join(out_dir, "loss.json"), "w") as f:
        json.dump({"about": header, "inputs": {"token": tok_inputs, "sequence": seq_inputs}, "cases": loss_cases}, f)
        f.write("\n")
    print(f"wrote {len(adv_cases)} advantage cases and {len(loss_cases)} loss cases to {out_dir}")


if __name__ == "__main__":
    main()
