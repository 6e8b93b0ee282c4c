#!/usr/bin/env python3
"""bench/cuda/bench_torch.py: PyTorch + transformers on the shapes of bench/cuda/bench_cuda.c, for the
ratios issue 6 asks for (decode >= 2x transformers' generate at batch 64; training MFU).

Same model shape (Qwen2.5-0.5B: V 151936, C 896, F 4864, 24 layers, 14/2 heads, tied embeddings,
q/k/v biases), random weights, same sizes:
  decode:   model.generate(do_sample, temperature 1, no top-k/top-p) from a 64-token prompt repeated G
            times, exactly 512 new tokens (no eos), G = 1, 16, 64, 256; bf16 weights (tf32: fp32 with
            TF32 matmuls). tokens/s = G * 512 / wall time (after a short warm-up).
  training: forward (logits, fp32 log_softmax, gathered log-probabilities), a weighted sum of the
            last 3/4 of each row as the loss, backward, clip_grad_norm_(1.0), AdamW, on B x T tokens:
            median of 5 steps after one warm-up; fp32 weights with bf16 autocast (as Trainer's bf16) or
            TF32. MFU from the same FLOP count as llama_forward_flops (x3 for forward + backward).
With --ours FILE (bench_cuda's output), prints grpo2048 / PyTorch ratios.

Usage (GPU machine, after bench_cuda; docs/gpu.md):
  python3 bench/cuda/bench_torch.py --precision bf16 --ours bench_cuda.txt
"""
import argparse
import re
import statistics
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM


def qwen25_05b(layers):
    return Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=layers,
                       num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                       rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True, use_sliding_window=False,
                       bos_token_id=None, eos_token_id=None, pad_token_id=None)


def forward_flops(c, B, T):
    """model/llama.c llama_forward_flops: matrix products incl. attention, 2 FLOPs per multiply-add."""
    C, F, V = c.hidden_size, c.intermediate_size, c.vocab_size
    HS = C // c.num_attention_heads
    QD, KD = c.num_attention_heads * HS, c.num_key_value_heads * HS
    N = B * T
    per_token_layer = 2.0 * (C * QD + 2.0 * C * KD + QD * C + 3.0 * C * F)
    att = B * c.num_attention_heads * 2.0 * 2.0 * HS * T * (T + 1) / 2.0
    return c.num_hidden_layers * (N * per_token_layer + att) + N * 2.0 * C * V


def sync():
    torch.cuda.synchronize()


def bench_decode(cfg, precision, batches, P, NEW):
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    model = Qwen2ForCausalLM(cfg).to("cuda", dtype=dtype).eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    g = torch.Generator(device="cpu").manual_seed(5)
    prompt = torch.randint(0, cfg.vocab_size, (1, P), generator=g)
    out = {}
    for G in batches:
        ids = prompt.repeat(G, 1).cuda()
        mask = torch.ones_like(ids)
        kw = dict(attention_mask=mask, do_sample=True, temperature=1.0, top_k=0, top_p=1.0, pad_token_id=0)
        with torch.no_grad():
            model.generate(ids, max_new_tokens=4, min_new_tokens=4, **kw)
            sync()
            t = time.perf_counter()
            res = model.generate(ids, max_new_tokens=NEW, min_new_tokens=NEW, **kw)
            sync()
            t = time.perf_counter() - t
        toks = (res.shape[1] - P) * G
        out[G] = toks / t
        print(f"torch decode G={G:<4d} {out[G]:8.0f} tokens/s ({toks} tokens in {t:.2f} s, "
              f"peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB)", flush=True)
    del model
    torch.cuda.empty_cache()
    return out


def bench_train(cfg, precision, B, T, peak):
    model = Qwen2ForCausalLM(cfg).to("cuda", dtype=torch.float32).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    g = torch.Generator(device="cpu").manual_seed(6)
    ids = torch.randint(0, cfg.vocab_size, (B, T), generator=g).cuda()
    w = (torch.rand(B, T, generator=g) - 0.5).cuda() / (B * T)
    w[:, : T // 4] = 0
    times = []
    torch.cuda.reset_peak_memory_stats()
    for it in range(6):
        sync()
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = model(ids).logits
        logp = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        loss = (logp * w[:, 1:]).sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sync()
        times.append(time.perf_counter() - t)
    t = statistics.median(times[1:])
    flops = 3 * forward_flops(cfg, B, T)
    tps, mfu = B * T / t, flops / t / peak
    print(f"torch train B={B} T={T}: {t * 1e3:.1f} ms/step, {tps:.0f} tokens/s, MFU {100 * mfu:.1f}% "
          f"(peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB)", flush=True)
    return tps, mfu


def parse_ours(path):
    """bench_cuda's summary table: decode rows and the training row."""
    dec, train = {}, None
    for line in open(path):
        m = re.match(r"\| decode G=(\d+) .*?\| (\d+) \|", line)
        if m:
            dec[int(m.group(1))] = float(m.group(2))
        m = re.match(r"\| train step .*?\| (\d+) \| MFU ([\d.]+)%", line)
        if m:
            train = (float(m.group(1)), float(m.group(2)) / 100)
    return dec, train


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--precision", choices=["bf16", "tf32", "fp32"], default="bf16")
    ap.add_argument("--batches", default="1,16,64,256")
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--new", type=int, default=512)
    ap.add_argument("--train-b", type=int, default=16)
    ap.add_argument("--train-t", type=int, default=512)
    ap.add_argument("--layers", type=int, default=24)
    ap.add_argument("--peak-tflops", type=float, default=0)
    ap.add_argument("--no-decode", action="store_true")
    ap.add_argument("--no-train", action="store_true")
    ap.add_argument("--ours", help="bench_cuda's output, for the ratios")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = a.precision == "tf32"
    torch.backends.cudnn.allow_tf32 = a.precision == "tf32"
    peak = a.peak_tflops * 1e12 or {"bf16": 989.4e12, "tf32": 494.7e12, "fp32": 66.9e12}[a.precision]
    cfg = qwen25_05b(a.layers)
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}, precision {a.precision}", flush=True)
    batches = [int(x) for x in a.batches.split(",")]
    dec = {} if a.no_decode else bench_decode(cfg, a.precision, batches, a.prompt, a.new)
    train = None if a.no_train else bench_train(cfg, a.precision, a.train_b, a.train_t, peak)
    if a.ours:
        odec, otrain = parse_ours(a.ours)
        print(f"\n| {a.precision} | grpo2048 | PyTorch | ratio |\n|---|---|---|---|")
        for G in batches:
            if G in dec and G in odec:
                print(f"| decode G={G} tokens/s | {odec[G]:.0f} | {dec[G]:.0f} | {odec[G] / dec[G]:.2f}x |")
        if train and otrain:
            print(f"| train tokens/s | {otrain[0]:.0f} | {train[0]:.0f} | {otrain[0] / train[0]:.2f}x |")
            print(f"| train MFU | {100 * otrain[1]:.1f}% | {100 * train[1]:.1f}% | |")


if __name__ == "__main__":
    main()
