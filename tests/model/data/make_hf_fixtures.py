"""Regenerates the Hugging Face reference fixtures used by tests/model/test_llama_hf.c.

Needs torch and transformers (not needed to build or test grpo2048):
    python3 -m venv /tmp/hfvenv && /tmp/hfvenv/bin/pip install torch transformers safetensors
    /tmp/hfvenv/bin/python tests/model/data/make_hf_fixtures.py

For three tiny random models it writes tests/model/data/hf_<name>/ with transformers'
save_pretrained output (config.json, model.safetensors) and expected.json holding, computed by
transformers in float32 with eager attention:
  tokens (B, T), logp (B, T) = log p(tokens[b,t] | tokens[b,<t]) (0 at t=0), entropy (B, T),
  prompt (P,) and greedy (max_new,) = model.generate(prompt, do_sample=False) continuation.
Models: llama (attention_bias: q/k/v/o biases, untied, saved F32), qwen2 (tied, q/k/v biases,
saved BF16), mistral (head_dim != hidden/heads, sliding_window 5, saved F16). Expected values are
computed by the model reloaded from the saved directory in float32.
"""
import json
import os

import torch
import transformers
from transformers import (AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM,
                          Qwen2Config, Qwen2ForCausalLM)

HERE = os.path.dirname(os.path.abspath(__file__))
COMMON = dict(vocab_size=37, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
              rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, pad_token_id=0)


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.25 * torch.randn(p.shape, generator=g))


def make(name, model, dtype, seed):
    randomize(model, seed)
    out = os.path.join(HERE, "hf_" + name)
    os.makedirs(out, exist_ok=True)
    model.to(dtype).save_pretrained(out, safe_serialization=True)
    os.remove(os.path.join(out, "generation_config.json"))  # not read by grpo2048
    # Reload what was saved, in float32 (a model moved to bf16 and back would keep bf16-rounded
    # rotary inv_freq buffers, which a fresh load recomputes in float32).
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32, attn_implementation="eager").eval()
    g = torch.Generator().manual_seed(seed + 100)
    B, T = 2, 24
    tokens = torch.randint(0, model.config.vocab_size, (B, T), generator=g)
    with torch.no_grad():
        logits = model(input_ids=tokens).logits.float()
        lsm = torch.log_softmax(logits, dim=-1)
        logp = torch.zeros(B, T)
        logp[:, 1:] = lsm[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0]
        ent = torch.zeros(B, T)
        ent[:, 1:] = -(lsm.exp() * lsm).sum(-1)[:, :-1]
        prompt = tokens[:1, :7]
        gen = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=16,
                             do_sample=False, pad_token_id=0)
    expected = dict(transformers_version=transformers.__version__, tokens=tokens.tolist(), logp=logp.tolist(),
                    entropy=ent.tolist(), prompt=prompt[0].tolist(), greedy=gen[0, prompt.shape[1]:].tolist())
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f)
    print(name, "saved", dtype, "greedy", expected["greedy"])


torch.manual_seed(0)
make("llama", LlamaForCausalLM(LlamaConfig(**COMMON, attention_bias=True, tie_word_embeddings=False,
                                           attn_implementation="eager")), torch.float32, 1)
make("qwen2", Qwen2ForCausalLM(Qwen2Config(**COMMON, tie_word_embeddings=True, rope_theta=1000.0,
                                           attn_implementation="eager")), torch.bfloat16, 2)
make("mistral", MistralForCausalLM(MistralConfig(**COMMON, head_dim=6, sliding_window=5, tie_word_embeddings=False,
                                                 attn_implementation="eager")), torch.float16, 3)
