#!/usr/bin/env python3
"""tools/make_hf_fixtures.py: reference fixtures from Hugging Face transformers for
tests/model/test_llama_hf.c, and the round trip of checkpoints saved by grpo2048 back into transformers.

Run offline, not by CI. Needs PyPI's torch, transformers and safetensors (CPU wheels are enough):
    python3 -m venv /tmp/hfvenv && /tmp/hfvenv/bin/pip install torch transformers safetensors
    /tmp/hfvenv/bin/python tools/make_hf_fixtures.py [--roundtrip-exe BUILD/test_llama_hf] [--no-write]

1. Fixtures (written unless --no-write). For a tiny random model of each architecture (2 layers,
   hidden 64, 4 query heads, 2 key/value heads (GQA), head_dim 8 != 64/4, intermediate 32, vocab 32):
     llama    LlamaForCausalLM, q/k/v/o biases (attention_bias), untied, llama3 rope scaling with the
              head's four frequencies in the high, medium and low bands; saved BF16
     qwen2    Qwen2ForCausalLM, q/k/v biases, tied embeddings; saved F16
     qwen3    Qwen3ForCausalLM, q_norm/k_norm, untied; saved F32 in shards (model.safetensors.index.json)
     mistral  MistralForCausalLM, sliding window 5, tied; saved BF16
   tests/model/data/hf_<name>/ receives save_pretrained's output (config.json, generation_config.json,
   weights) and:
     reference.safetensors  F32 tensors computed by transformers in float32 with eager attention on
                            the weights as saved (reloaded with dtype=float32):
                              "tokens" I32 (B, T) = (2, 16) random ids,
                              "logits" (B, T, V) = model(tokens).logits,
                              "loss" () = model(tokens, labels=tokens).loss (mean next-token NLL),
                              "grad.<parameter name>" = d loss / d parameter for every parameter
                              (a tied embedding's gradient includes the LM head's use)
     expected.json          {"transformers_version", "torch_version", "loss", "prompt", "greedy"}: greedy
                            = model.generate(prompt, do_sample=False, max_new_tokens=12) continuation
   and tests/model/data/rope_llama3.json: transformers' inv_freq for the rope parameters of
   Llama-3.2-3B-Instruct's config.json (head_dim 128, theta 500000, llama3 factor 32, low 1, high 4,
   original_max_position_embeddings 8192), {"config": {...}, "inv_freq": [...]}.

2. Round trip (when the test program exists: --roundtrip-exe, default build/test_llama_hf). The
   program is run as `test_llama_hf --roundtrip OUT`: for each fixture it loads the folder with
   llama_load and saves it with llama_save as OUT/<name>_f32, OUT/<name>_bf16 (BF16) and
   OUT/<name>_sharded (F32 shards of at most 16 KB), and writes into each saved folder
   grpo2048_logits.json = {"tokens": (B,T), "logits": (B,T,V)} computed by grpo2048 after loading that
   folder back. This script then loads every saved folder with transformers' from_pretrained
   (float32, eager), asserts its logits equal grpo2048's (max |diff| <= 1e-4 * max |logit|), that
   the f32 folders also equal the fixture's reference logits, and that GenerationConfig reads the
   bos/eos ids; it prints the figures.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import safetensors.torch
import torch
import transformers
from transformers import (AutoModelForCausalLM, GenerationConfig, LlamaConfig, LlamaForCausalLM, MistralConfig,
                          MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "model", "data")
COMMON = dict(vocab_size=24, hidden_size=64, intermediate_size=16, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, head_dim=6, max_position_embeddings=512, rms_norm_eps=1e-5,
              bos_token_id=1, eos_token_id=2, pad_token_id=0)
B, T = 2, 16
TOL = 1e-4


def make_models():
    """(name, model, save dtype, save kwargs, seed) of the four fixtures."""
    # llama3 rope: head_dim 6 -> inv_freq theta^(-i/3), i < 3; theta 10000 gives wavelengths 6.3, 135,
    # 2917; original_max 256 with low/high factors 1/4 (bands at 256 and 64) puts them at high, medium, low.
    llama = LlamaForCausalLM(LlamaConfig(**COMMON, attention_bias=True, tie_word_embeddings=False,
                                         rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                                           high_freq_factor=4.0,
                                                           original_max_position_embeddings=256),
                                         attn_implementation="eager"))
    qwen2 = Qwen2ForCausalLM(Qwen2Config(**COMMON, tie_word_embeddings=True, rope_theta=1000.0,
                                         attn_implementation="eager"))
    qwen3 = Qwen3ForCausalLM(Qwen3Config(**COMMON, tie_word_embeddings=False, rope_theta=1000000.0,
                                         attn_implementation="eager"))
    mistral = MistralForCausalLM(MistralConfig(**COMMON, sliding_window=5, tie_word_embeddings=True,
                                               attn_implementation="eager"))
    return [("llama", llama, torch.bfloat16, {}, 1), ("qwen2", qwen2, torch.float16, {}, 2),
            ("qwen3", qwen3, torch.float32, {"max_shard_size": 20000}, 3),
            ("mistral", mistral, torch.bfloat16, {}, 4)]


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))


def load_fp32(folder):
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()


def write_fixture(name, model, dtype, save_kwargs, seed):
    randomize(model, seed)
    out = os.path.join(DATA, "hf_" + name)
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    model.to(dtype).save_pretrained(out, safe_serialization=True, **save_kwargs)
    # Reload what was saved, in float32 (a model moved to bf16 and back would keep bf16-rounded
    # rotary inv_freq buffers, which a fresh load recomputes in float32).
    model = load_fp32(out)
    g = torch.Generator().manual_seed(seed + 100)
    tokens = torch.randint(0, model.config.vocab_size, (B, T), generator=g)
    model.zero_grad()
    outp = model(input_ids=tokens, labels=tokens)
    outp.loss.backward()
    loss = float(outp.loss.detach())
    ref = {"tokens": tokens.to(torch.int32).contiguous(), "logits": outp.logits.detach().float().contiguous(),
           "loss": outp.loss.detach().float().reshape(())}
    for pname, p in model.named_parameters():
        ref["grad." + pname] = p.grad.detach().float().contiguous()
    safetensors.torch.save_file(ref, os.path.join(out, "reference.safetensors"))
    with torch.no_grad():
        prompt = tokens[:1, :6]
        gen = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=12,
                             do_sample=False, pad_token_id=0)
    expected = dict(transformers_version=transformers.__version__, torch_version=torch.__version__,
                    loss=loss, prompt=prompt[0].tolist(), greedy=gen[0, prompt.shape[1]:].tolist())
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f)
    size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print("%-8s saved %-14s %6d parameters, loss %.6f, greedy %s, %d bytes in %s" % (
        name, str(dtype).replace("torch.", ""), sum(p.numel() for p in model.parameters()), loss,
        expected["greedy"], size, os.path.relpath(out, ROOT)))
    return size


def write_rope_fixture():
    """inv_freq of Llama-3.2-3B-Instruct's rope parameters, as transformers computes them."""
    cfg = dict(head_dim=128, hidden_size=3072, num_attention_heads=24, rope_theta=500000.0, factor=32.0,
               low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=8192)
    config = LlamaConfig(hidden_size=cfg["hidden_size"], num_attention_heads=cfg["num_attention_heads"],
                         head_dim=cfg["head_dim"], num_key_value_heads=8, intermediate_size=64, num_hidden_layers=1,
                         vocab_size=16, max_position_embeddings=131072,
                         rope_scaling=dict(rope_type="llama3", factor=cfg["factor"],
                                           low_freq_factor=cfg["low_freq_factor"],
                                           high_freq_factor=cfg["high_freq_factor"],
                                           original_max_position_embeddings=cfg["original_max_position_embeddings"]),
                         rope_theta=cfg["rope_theta"])
    inv_freq, scale = transformers.modeling_rope_utils.ROPE_INIT_FUNCTIONS["llama3"](config, "cpu")
    assert scale == 1.0 and inv_freq.dtype == torch.float32
    with open(os.path.join(DATA, "rope_llama3.json"), "w") as f:
        json.dump({"transformers_version": transformers.__version__, "config": cfg,
                   "inv_freq": [float(x) for x in inv_freq]}, f)
    print("rope_llama3.json: %d inv_freq values, from %.6g to %.6g" % (len(inv_freq), inv_freq[0], inv_freq[-1]))


def roundtrip(exe):
    out = tempfile.mkdtemp(prefix="grpo2048_roundtrip_")
    try:
        env = dict(os.environ, GRPO2048_SOURCE_DIR=ROOT)
        subprocess.run([exe, "--roundtrip", out], check=True, env=env, cwd=ROOT)
        worst = 0.0
        for name in ("llama", "qwen2", "qwen3", "mistral"):
            ref = safetensors.torch.load_file(os.path.join(DATA, "hf_" + name, "reference.safetensors"))
            for variant in ("f32", "bf16", "sharded"):
                folder = os.path.join(out, "%s_%s" % (name, variant))
                with open(os.path.join(folder, "grpo2048_logits.json")) as f:
                    c = json.load(f)
                tokens = torch.tensor(c["tokens"])
                c_logits = torch.tensor(c["logits"], dtype=torch.float32)
                model = load_fp32(folder)
                with torch.no_grad():
                    hf_logits = model(input_ids=tokens).logits.float()
                scale = float(hf_logits.abs().max())
                diff = float((hf_logits - c_logits).abs().max())
                line = "%-8s %-8s transformers vs grpo2048 logits: max|diff| %.3g (rel %.2e)" % (
                    name, variant, diff, diff / scale)
                assert diff <= TOL * scale, line
                worst = max(worst, diff / scale)
                if variant != "bf16":
                    # same fp32 weights as the fixture: also the fixture's own reference logits
                    assert torch.equal(tokens.to(torch.int32), ref["tokens"]), "round-trip tokens differ"
                    d2 = float((hf_logits - ref["logits"]).abs().max())
                    line += "; vs fixture reference %.3g" % d2
                    assert d2 <= TOL * scale, line
                gc = GenerationConfig.from_pretrained(folder)
                assert gc.bos_token_id == model.config.bos_token_id and gc.eos_token_id is not None, gc
                if variant == "sharded":
                    with open(os.path.join(folder, "model.safetensors.index.json")) as f:
                        nshards = len(set(json.load(f)["weight_map"].values()))
                    line += " (%d shards)" % nshards
                print(line)
        print("round trip OK: worst relative logits difference %.2e (tolerance %g)" % (worst, TOL))
    finally:
        shutil.rmtree(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--roundtrip-exe", default=os.path.join(ROOT, "build", "test_llama_hf"),
                    help="the built tests/model/test_llama_hf (default build/test_llama_hf)")
    ap.add_argument("--no-write", action="store_true", help="keep the committed fixtures, only run the round trip")
    args = ap.parse_args()
    torch.manual_seed(0)
    if not args.no_write:
        total = sum(write_fixture(*spec) for spec in make_models())
        write_rope_fixture()
        print("fixtures: %d bytes in all" % total)
    if os.path.exists(args.roundtrip_exe):
        roundtrip(args.roundtrip_exe)
    else:
        print("round trip NOT run: %s does not exist (build it, or pass --roundtrip-exe)" % args.roundtrip_exe)
        sys.exit(1 if args.no_write else 0)


if __name__ == "__main__":
    main()
