#!/usr/bin/env python3
"""tools/make_grpo_fixtures.py: reference values for tests/trainer/test_grpo.c, computed by the real TRL.

Writes tests/fixtures/grpo/generation.json, loss.json, entropy_mask.json and vllm_is.json. Run from the repository root,
offline, in a venv with the pinned TRL (not in CI):

    python3 -m venv ~/.cache/grpo2048/trl-venv
    ~/.cache/grpo2048/trl-venv/bin/pip install trl==1.16.0 torch
    ~/.cache/grpo2048/trl-venv/bin/python tools/make_grpo_fixtures.py

Nothing of TRL is transcribed here: the script builds a real `trl.GRPOTrainer` (a tiny randomly initialised
LlamaForCausalLM and a word-level tokenizer made in memory, so nothing is downloaded) and calls its own
methods on fixed inputs:

  - `GRPOTrainer._generate_and_score_completions` (advantages, num_items_in_batch after
    mask_truncated_completions, and the metrics it logs: reward, reward_std, frac_reward_zero_std,
    rewards/<f>/mean|std, completions/*, num_tokens). Generation is stubbed with TRL's own `rollout_func`
    hook (it returns the fixed completion ids); the reward functions are plain callables that return the
    fixed rewards. The model's log-probabilities are never needed there (old and reference log-probs are
    the stub below).
  - `GRPOTrainer._compute_loss` for one micro-batch: `_get_per_token_logps_and_entropies` is replaced by a
    stub that returns the fixed per-token log-probabilities and entropies as leaf tensors, so
    `loss.backward()` gives d loss / d logp (and d loss / d entropy, which the entropy bonus uses) by torch's
    autograd of TRL's own expression. The metrics `_compute_loss` appends to `trainer._metrics["train"]`
    are recorded as logged.

  - vllm_is.json, TRL's importance-sampling correction of the sampler/trainer mismatch
    (vllm_importance_sampling_correction): `_generate_and_score_completions` with `use_vllm` switched on after
    construction (vLLM itself is not needed: generation is the `rollout_func` stub, whose "logprobs" are the
    sampling log-probs, one of them None as vLLM reports an unscorable token), which computes the ratio and logs
    sampling/sampling_logp_difference/* and sampling/importance_sampling_ratio/*; then `_compute_loss` on its
    output (the ratio included), with gradients by autograd.

The trainer's settings go through a real `GRPOConfig` (so its __post_init__ runs: scale_rewards True/False,
steps_per_generation). All tensors are float32, as in TRL; inputs are float32 values, written with 9
significant digits (exact round trip).
"""
import json
import os
import random
import sys
import tempfile

import torch

import transformers
import trl
from datasets import Dataset
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from trl import GRPOConfig, GRPOTrainer

TRL_VERSION = "1.16.0"
REWARD_FUNCS = ("function_works", "no_cheating", "strategy_succeeds", "game_progress")

# ------------------------------------------------------------------------------------------------
# A real GRPOTrainer on a tiny model


def make_tokenizer():
    vocab = {"<pad>": 0, "<eos>": 1}
    for i in range(30):
        vocab[f"w{i}"] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")


PAD, EOS = 0, 1

# the case being computed: the reward functions and the generation stub read it
CURRENT = {}


def make_reward_func(k):
    def f(prompts, completions, **kwargs):
        return [float(x) for x in CURRENT["rewards_per_func"][k]]

    f.__name__ = REWARD_FUNCS[k]
    return f


def rollout_func(prompts, trainer):
    """TRL's rollout_func hook: the fixed prompt and completion ids of the current case, in order."""
    n = len(prompts)
    assert n == len(CURRENT["completion_ids"]), (n, len(CURRENT["completion_ids"]))
    prompt_ids = [list(range(2, 2 + CURRENT["prompt_length"])) for _ in range(n)]
    return {"prompt_ids": prompt_ids, "completion_ids": [list(c) for c in CURRENT["completion_ids"]],
            "logprobs": CURRENT.get("logprobs") or [[0.0] * len(c) for c in CURRENT["completion_ids"]]}


MODEL_DIR = None


def model_dir():
    """A tiny randomly initialised Llama saved once to a temporary folder (the reference model loads from it)."""
    global MODEL_DIR
    if MODEL_DIR is None:
        torch.manual_seed(0)
        model = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                             num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                                             pad_token_id=PAD, eos_token_id=EOS))
        model.generation_config.eos_token_id = EOS
        MODEL_DIR = tempfile.mkdtemp(prefix="grpo2048-tiny-llama-")
        model.save_pretrained(MODEL_DIR)
    return MODEL_DIR


def make_trainer(**cfg):
    model = model_dir()
    tmp = tempfile.mkdtemp(prefix="grpo2048-trl-")
    args = GRPOConfig(output_dir=tmp, use_cpu=True, bf16=False, report_to=[], logging_steps=1, save_strategy="no",
                      **cfg)
    ds = Dataset.from_dict({"prompt": ["w1 w2 w3"] * 64})
    trainer = GRPOTrainer(model=model, reward_funcs=[make_reward_func(k) for k in range(4)], args=args,
                          train_dataset=ds, processing_class=make_tokenizer(), rollout_func=rollout_func)
    trainer.model.train()
    # set by transformers' training loop for each accumulation window (all windows are full here)
    trainer.current_gradient_accumulation_steps = args.gradient_accumulation_steps
    return trainer


class LogpStub:
    """Replaces trainer._get_per_token_logps_and_entropies: the fixed log-probs (and entropies) of a micro-batch."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.logp = self.entropy = self.old = self.ref = None

    def __call__(self, model, input_ids, attention_mask, logits_to_keep, compute_entropy=False, **kw):
        if model is self.trainer.model:
            if torch.is_grad_enabled():
                return self.logp, (self.entropy if compute_entropy else None), None
            return self.old.clone(), None, None   # old_per_token_logps at generation time
        if model is self.trainer.ref_model:
            return self.ref.clone(), None, None
        raise AssertionError("unexpected model")


def f32(x):
    return float(torch.tensor(x, dtype=torch.float32))


def tensor_list(t):
    return [[float(v) for v in row] for row in t.tolist()] if t.dim() == 2 else [float(v) for v in t.tolist()]


def short(x):
    """Floats with 9 significant digits (every value here is a float32, which 9 digits round-trip exactly)."""
    if isinstance(x, float):
        return float(f"{x:.9g}")
    if isinstance(x, list):
        return [short(v) for v in x]
    if isinstance(x, dict):
        return {k: short(v) for k, v in x.items()}
    return x


def metrics_of(trainer):
    out = {}
    for k, v in trainer._metrics["train"].items():
        assert len(v) == 1, (k, v)
        out[k] = float(v[0])
    trainer._metrics["train"].clear()
    return out


# ------------------------------------------------------------------------------------------------
# _compute_loss on one micro-batch


def run_loss(trainer, stub, x, micro, num_items_in_batch):
    """One _compute_loss call on micro-batch `micro` of inputs x; returns loss, grads and logged metrics."""
    B, T = len(x["logp"]), len(x["logp"][0])
    stub.logp = torch.tensor(x["logp"], dtype=torch.float32, requires_grad=True)
    stub.entropy = torch.tensor(x["entropy"], dtype=torch.float32, requires_grad=True)
    inputs = {
        "prompt_ids": torch.full((B, 2), 2, dtype=torch.long),
        "prompt_mask": torch.ones((B, 2), dtype=torch.long),
        "completion_ids": torch.full((B, T), 3, dtype=torch.long),
        "completion_mask": torch.tensor(x["mask"], dtype=torch.long),
        "advantages": torch.tensor(x["advantages"], dtype=torch.float32),
        "num_items_in_batch": torch.tensor(float(num_items_in_batch)),
    }
    if micro.get("old", True):
        inputs["old_per_token_logps"] = torch.tensor(x["old_logp"], dtype=torch.float32)
    if trainer.beta != 0.0:
        inputs["ref_per_token_logps"] = torch.tensor(x["ref_logp"], dtype=torch.float32)
    emask = None
    if trainer.top_entropy_quantile < 1.0:
        emask = trainer.get_high_entropy_mask(stub.entropy.detach(), inputs["completion_mask"],
                                              1 - trainer.top_entropy_quantile).float()
    trainer._metrics["train"].clear()
    loss = trainer._compute_loss(trainer.model, inputs)
    loss.backward()
    return {
        "loss": float(loss),
        "dlogp": tensor_list(stub.logp.grad),
        "dentropy": tensor_list(stub.entropy.grad) if stub.entropy.grad is not None else None,
        "entropy_mask": tensor_list(emask) if emask is not None else None,
        "metrics": metrics_of(trainer),
    }


def make_inputs(rng, B, T, lens, advantages, seq_shift, noise):
    """Per-token log-probs of a micro-batch: old = logp + per-sequence shift + noise, so that token and sequence
    ratios land on both sides of the clip ranges and of delta; padding holds values the loss must ignore."""
    logp = [[f32(-rng.uniform(0.05, 3.0)) for _ in range(T)] for _ in range(B)]
    old = [[f32(logp[b][t] + seq_shift[b] + rng.uniform(-noise, noise)) for t in range(T)] for b in range(B)]
    old[0][2] = logp[0][2]  # a ratio of exactly 1: torch.min's tie
    ref = [[f32(logp[b][t] + rng.uniform(-0.5, 0.5)) for t in range(T)] for b in range(B)]
    ent = [[f32(rng.uniform(0.0, 3.0)) for _ in range(T)] for _ in range(B)]
    ent[1][1] = ent[2][0]  # equal entropies: a tie at the quantile threshold is possible
    mask = [[1.0 if t < lens[b] else 0.0 for t in range(T)] for b in range(B)]
    for b in range(B):
        for t in range(lens[b], T):
            logp[b][t], old[b][t], ref[b][t] = f32(-7.0), f32(3.0), f32(-9.0)
    return {"B": B, "T": T, "logp": logp, "old_logp": old, "ref_logp": ref, "entropy": ent, "mask": mask,
            "advantages": [f32(a) for a in advantages]}


LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo", "luspo", "vespo")


def loss_cases(rng):
    B, T = 5, 7
    inputs = {
        "token": make_inputs(rng, B, T, [7, 6, 3, 0, 5], [1.3, -0.7, 0.4, -1.1, -0.5], [0.0] * 5, 0.6),
        "sequence": make_inputs(rng, B, T, [7, 5, 3, 6, 0], [-0.9, 1.2, 0.6, -0.4, 0.8],
                                [0.5, -0.45, -0.05, -0.4, 0.0], 0.3),
        # on-policy: old_per_token_logps absent, TRL uses per_token_logps.detach()
        "onpolicy": make_inputs(rng, B, T, [4, 7, 2, 6, 5], [0.8, -1.2, 0.3, 0.0, -0.6], [0.0] * 5, 0.0),
    }
    # variants: (beta, epsilon_high, delta, top_entropy_quantile, entropy_coef, use_bias_correction_kl)
    variants = []
    for beta in (0.0, 0.04):
        variants.append(dict(beta=beta, epsilon_high=None, delta=None, top_entropy_quantile=1.0, entropy_coef=0.0))
        variants.append(dict(beta=beta, epsilon_high=0.28, delta=1.35, top_entropy_quantile=0.6, entropy_coef=0.0))
    variants.append(dict(beta=0.04, epsilon_high=None, delta=None, top_entropy_quantile=1.0, entropy_coef=0.0,
                         use_bias_correction_kl=False))
    variants.append(dict(beta=0.04, epsilon_high=0.28, delta=None, top_entropy_quantile=0.6, entropy_coef=0.01))
    variants.append(dict(beta=0.0, epsilon_high=None, delta=1.35, top_entropy_quantile=1.0, entropy_coef=0.02))
    cases = []
    # steps_per_generation (4) != gradient_accumulation_steps (2): the dapo-style normaliser's factor A / S
    layout = dict(per_device_train_batch_size=B, gradient_accumulation_steps=2, steps_per_generation=4,
                  num_generations=5, max_completion_length=8)
    num_items_in_batch = 57.0
    for loss_type in LOSS_TYPES:
        for level in ("token", "sequence"):
            for which in (level, "onpolicy"):
                for v in variants:
                    if which == "onpolicy" and (v["delta"] is not None and v["entropy_coef"] == 0.0):
                        continue   # keep the file small: on-policy ratios are 1, delta changes nothing
                    eps_high = v["epsilon_high"]
                    if loss_type == "cispo" and eps_high is not None:
                        eps_high = 1.3   # cispo's epsilon_high is an upper bound on the ratio itself (ScaleRL: 5)
                    cfg = dict(layout, loss_type=loss_type, importance_sampling_level=level, beta=v["beta"],
                               epsilon=0.2, epsilon_high=eps_high, delta=v["delta"],
                               top_entropy_quantile=v["top_entropy_quantile"], entropy_coef=v["entropy_coef"],
                               use_bias_correction_kl=v.get("use_bias_correction_kl", True))
                    cases.append((which, cfg))
    return inputs, cases, num_items_in_batch


# ------------------------------------------------------------------------------------------------
# _generate_and_score_completions


def generation_cases():
    """(config, rewards_per_func (4, N), completion lengths, terminated flags, prompt length)."""
    rng = random.Random(7)
    cases = []

    def completions(lens, term):
        out = []
        for L, t in zip(lens, term):
            ids = [rng.randrange(2, 32) for _ in range(L)]
            if t and L > 0:
                ids[-1] = EOS
            out.append(ids)
        return out

    # 3 groups of 4 (the last all equal), scale_rewards in every spelling, truncation masked or not,
    # steps_per_generation 4 != gradient_accumulation_steps 2
    rpf = [[1, 1, -2, 1, 1, -0.5, 1, 1, 1, 1, 1, 1],
           [1, 1, -1, 1, -20, 1, 1, 1, 1, 1, 1, 1],
           [2, 20, 0, -3, 0, 0, -1, 2, 2, 2, 2, 2],
           [0.5, 0.75, 0, 0, 0, 0, 0, 0.625, 0.5, 0.5, 0.5, 0.5]]
    lens = [5, 8, 3, 8, 6, 8, 2, 7, 4, 4, 8, 1]
    term = [1, 0, 1, 0, 1, 1, 1, 1, 1, 1, 0, 1]
    comp = completions(lens, term)
    for scale in ("group", "batch", "none", True, False):
        for mask_trunc in (False, True):
            cases.append(dict(cfg=dict(num_generations=4, per_device_train_batch_size=3, gradient_accumulation_steps=2,
                                       steps_per_generation=4, max_completion_length=8, scale_rewards=scale,
                                       mask_truncated_completions=mask_trunc, reward_weights=[1.0, 0.5, 1.0, 2.0]),
                              rpf=rpf, comp=comp, prompt_length=5))
    # equal rewards everywhere (zero std); every completion truncated (terminated metrics 0)
    rpf2 = [[2.0] * 6, [1.0] * 6, [0.0] * 6, [0.25] * 6]
    comp2 = completions([4, 4, 4, 4, 4, 4], [0] * 6)
    for scale in ("group", "batch"):
        cases.append(dict(cfg=dict(num_generations=3, per_device_train_batch_size=3, gradient_accumulation_steps=2,
                                   max_completion_length=4, scale_rewards=scale, mask_truncated_completions=True),
                          rpf=rpf2, comp=comp2, prompt_length=3))
    return cases


def run_generation(case):
    cfg = dict(case["cfg"])
    trainer = make_trainer(**cfg)
    N = len(case["comp"])
    CURRENT.update(rewards_per_func=case["rpf"], completion_ids=case["comp"], prompt_length=case["prompt_length"])
    stub = LogpStub(trainer)
    stub.old = torch.zeros((N, max(len(c) for c in case["comp"])))
    trainer._get_per_token_logps_and_entropies = stub
    trainer._metrics["train"].clear()
    out = trainer._generate_and_score_completions([{"prompt": "w1 w2 w3"} for _ in range(N)])
    metrics = {}
    for k, v in trainer._metrics["train"].items():
        metrics[k] = float(v[-1])
    weights = cfg.get("reward_weights") or [1.0] * 4
    cfg_out = {k: v for k, v in cfg.items()}
    cfg_out["scale_rewards_resolved"] = trainer.scale_rewards
    return {
        "config": cfg_out,
        "reward_weights": weights,
        "rewards_per_func": case["rpf"],
        "completion_lengths": [len(c) for c in case["comp"]],
        "terminated": [int(len(c) > 0 and c[-1] == EOS) for c in case["comp"]],
        "prompt_length": case["prompt_length"],
        "advantages": [float(a) for a in out["advantages"].tolist()],
        "num_items_in_batch": float(out["num_items_in_batch"]),
        "completion_mask_rows": [int(r.sum()) for r in out["completion_mask"]],
        "metrics": metrics,
    }


# ------------------------------------------------------------------------------------------------
# get_high_entropy_mask on many random micro-batches: its quantile runs in float32, which decides whether a
# token at the threshold is in or out


def entropy_mask_cases(trainer, count=300):
    rng = random.Random(80)
    out = []
    for _ in range(count):
        B, T = 3, 6
        lens = [rng.randint(0, T) for _ in range(B)]
        ent = [[round(rng.uniform(0.0, 4.0), 2) for _ in range(T)] for _ in range(B)]
        q = rng.choice([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])   # top_entropy_quantile
        mask = torch.tensor([[1 if t < L else 0 for t in range(T)] for L in lens])
        got = trainer.get_high_entropy_mask(torch.tensor(ent, dtype=torch.float32), mask, 1 - q)
        out.append({"lens": lens, "entropy": ent, "top_entropy_quantile": q,
                    "mask": "".join("1" if v else "0" for v in got.flatten().tolist())})
    return out


# ------------------------------------------------------------------------------------------------
# The vLLM importance-sampling correction: _generate_and_score_completions computes the ratio and its metrics
# from the sampling log-probs of the rollout, _compute_loss multiplies the per-token loss by it (vespo: into its
# Gamma weight)

IS_MODES = ("token_truncate", "token_mask", "sequence_truncate", "sequence_mask")
IS_CLIPS = ((None, 3.0), (0.5, 2.0), (0.9, 1.1), (0.8, None))


class NoSync:
    def sync_weights(self):
        pass


def vllm_is_inputs(rng):
    """One generation of N = 6 completions (2 groups of 3), T = 6: sampling log-probs differ from the training
    forward's (old) by per-sequence shifts and per-token noise, so that token and sequence ratios fall inside,
    below and above the clip values; one sampling log-prob is NaN (None from the rollout, as vLLM reports it)."""
    N, T = 6, 6
    lens = [6, 4, 2, 5, 6, 3]
    term = [0, 1, 1, 1, 0, 1]
    comp = []
    for L, t in zip(lens, term):
        ids = [rng.randrange(2, 32) for _ in range(L)]
        if t:
            ids[-1] = EOS
        comp.append(ids)
    shift = [0.35, -0.2, 0.05, -0.05, 0.12, -0.6]
    old = [[f32(-rng.uniform(0.05, 3.0)) for _ in range(T)] for _ in range(N)]
    samp = [[f32(old[b][t] - shift[b] + rng.uniform(-0.25, 0.25)) for t in range(lens[b])] for b in range(N)]
    samp[1][2] = None
    logp = [[f32(old[b][t] + rng.uniform(-0.3, 0.3)) for t in range(T)] for b in range(N)]
    ent = [[f32(rng.uniform(0.0, 3.0)) for _ in range(T)] for _ in range(N)]
    ref = [[f32(logp[b][t] + rng.uniform(-0.5, 0.5)) for t in range(T)] for b in range(N)]
    for b in range(N):
        for t in range(lens[b], T):
            old[b][t], logp[b][t], ref[b][t] = f32(-4.0), f32(-6.0), f32(-8.0)
    rpf = [[1, 0.5, -1, 1, 2, 0], [1, 1, 1, -2, 1, 1], [0, 2, 1, 0, 0.5, 3], [0.25, 0, 0.5, 0.5, 0, 1]]
    return {"N": N, "T": T, "completion_lengths": lens, "terminated": term, "comp": comp, "old_logp": old,
            "sampling_logp": samp, "logp": logp, "entropy": ent, "ref_logp": ref, "rewards_per_func": rpf}


def run_vllm_is(x, cfg):
    trainer = make_trainer(**cfg)
    trainer.use_vllm = True                 # the correction is gated on use_vllm in TRL
    trainer.vllm_generation = NoSync()      # rollout_func path syncs vLLM weights; nothing to sync here
    trainer._last_loaded_step = trainer.state.global_step
    N = x["N"]
    CURRENT.update(rewards_per_func=x["rewards_per_func"], completion_ids=x["comp"], prompt_length=3,
                   logprobs=x["sampling_logp"])
    stub = LogpStub(trainer)
    stub.old = torch.tensor(x["old_logp"], dtype=torch.float32)
    stub.ref = torch.tensor(x["ref_logp"], dtype=torch.float32)
    trainer._get_per_token_logps_and_entropies = stub
    trainer._metrics["train"].clear()
    out = trainer._generate_and_score_completions([{"prompt": "w1 w2 w3"} for _ in range(N)])
    gen_metrics = {k: float(v[-1]) for k, v in trainer._metrics["train"].items() if k.startswith("sampling/")}
    ratio = out["importance_sampling_ratio"]
    stub.logp = torch.tensor(x["logp"], dtype=torch.float32, requires_grad=True)
    stub.entropy = torch.tensor(x["entropy"], dtype=torch.float32, requires_grad=True)
    trainer._metrics["train"].clear()
    loss = trainer._compute_loss(trainer.model, out)
    loss.backward()
    args = {k: cfg[k] for k in ("loss_type", "importance_sampling_level", "beta", "vllm_importance_sampling_mode",
                                "vllm_importance_sampling_clip_min", "vllm_importance_sampling_clip_max",
                                "gradient_accumulation_steps", "steps_per_generation", "max_completion_length")}
    args["epsilon"] = trainer.epsilon_low
    args["epsilon_high"] = trainer.epsilon_high
    return {
        "args": args,
        "advantages": [float(a) for a in out["advantages"].tolist()],
        "num_items_in_batch": float(out["num_items_in_batch"]),
        "importance_sampling_ratio": tensor_list(ratio.expand(N, x["T"]).contiguous()),
        "generation_metrics": gen_metrics,
        "loss": float(loss),
        "dlogp": tensor_list(stub.logp.grad),
        "metrics": metrics_of_last(trainer),
    }


def metrics_of_last(trainer):
    out = {k: float(v[-1]) for k, v in trainer._metrics["train"].items()}
    trainer._metrics["train"].clear()
    return out


def vllm_is_cases():
    rng = random.Random(4096)
    x = vllm_is_inputs(rng)
    layout = dict(per_device_train_batch_size=6, gradient_accumulation_steps=1, steps_per_generation=1,
                  num_generations=3, max_completion_length=6, epsilon=0.2)
    out = []
    for loss_type, level, beta in (("dapo", "token", 0.0), ("grpo", "sequence", 0.0), ("sapo", "token", 0.0),
                                   ("cispo", "token", 0.0), ("vespo", "token", 0.0), ("dapo", "token", 0.04)):
        for mode in IS_MODES:
            if loss_type == "vespo" and mode.startswith("sequence"):
                continue   # TRL refuses it (GRPOTrainer.__init__: VESPO needs a token_* mode)
            for cmin, cmax in IS_CLIPS:
                cfg = dict(layout, loss_type=loss_type, importance_sampling_level=level, beta=beta,
                           epsilon_high=1.3 if loss_type == "cispo" else None,
                           vllm_importance_sampling_correction=True, vllm_importance_sampling_mode=mode,
                           vllm_importance_sampling_clip_min=cmin, vllm_importance_sampling_clip_max=cmax)
                out.append(run_vllm_is(x, cfg))
    inputs = {k: x[k] for k in ("N", "T", "completion_lengths", "terminated", "old_logp", "logp", "entropy",
                                "ref_logp")}
    # NaN is not JSON: the unscored sampling log-prob is written as null
    inputs["sampling_logp"] = [[v for v in row] + [0.0] * (x["T"] - len(row)) for row in x["sampling_logp"]]
    return inputs, out


def main():
    if trl.__version__ != TRL_VERSION:
        sys.exit(f"make_grpo_fixtures: needs trl {TRL_VERSION}, found {trl.__version__}")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out_dir = os.path.join(root, "tests", "fixtures", "grpo")
    os.makedirs(out_dir, exist_ok=True)
    header = (f"made by tools/make_grpo_fixtures.py from trl {trl.__version__} (transformers {transformers.__version__}, "
              f"torch {torch.__version__}): GRPOTrainer._generate_and_score_completions and _compute_loss; do not edit")

    gens = [run_generation(c) for c in generation_cases()]
    with open(os.path.join(out_dir, "generation.json"), "w") as f:
        json.dump(short({"about": header, "trl_version": trl.__version__, "cases": gens}), f, indent=0)
        f.write("\n")

    rng = random.Random(2048)
    inputs, cases, num_items = loss_cases(rng)
    out = []
    trainers = {}
    for which, cfg in cases:
        key = json.dumps(cfg, sort_keys=True)
        trainer = trainers.get(key) or make_trainer(**cfg)
        trainers.clear()
        trainers[key] = trainer
        stub = LogpStub(trainer)
        trainer._get_per_token_logps_and_entropies = stub
        x = inputs[which]
        res = run_loss(trainer, stub, x, {"old": which != "onpolicy"}, num_items)
        args = {k: cfg[k] for k in ("loss_type", "importance_sampling_level", "beta", "epsilon", "delta",
                                    "top_entropy_quantile", "entropy_coef", "use_bias_correction_kl",
                                    "gradient_accumulation_steps", "steps_per_generation", "max_completion_length")}
        args["epsilon_high"] = trainer.epsilon_high
        args["num_items_in_batch"] = num_items
        for k in ("sapo_temperature_pos", "sapo_temperature_neg", "vespo_k_pos", "vespo_lambda_pos", "vespo_k_neg",
                  "vespo_lambda_neg"):
            args[k] = getattr(trainer.args, k)
        out.append({"inputs": which, "args": args, **res})
    with open(os.path.join(out_dir, "loss.json"), "w") as f:
        json.dump(short({"about": header, "trl_version": trl.__version__, "inputs": inputs, "cases": out}), f,
                  separators=(",", ":"))
        f.write("\n")
    em = entropy_mask_cases(make_trainer(top_entropy_quantile=0.5))
    with open(os.path.join(out_dir, "entropy_mask.json"), "w") as f:
        json.dump({"about": header, "trl_version": trl.__version__, "cases": em}, f, separators=(",", ":"))
        f.write("\n")
    vis_inputs, vis = vllm_is_cases()
    with open(os.path.join(out_dir, "vllm_is.json"), "w") as f:
        json.dump(short({"about": header, "trl_version": trl.__version__, "inputs": vis_inputs, "cases": vis}), f,
                  separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(vis)} vllm importance-sampling cases, {len(em)} entropy-mask cases, {len(gens)} generation cases and {len(out)} loss cases to {out_dir} (trl {trl.__version__})")


if __name__ == "__main__":
    main()
