#!/usr/bin/env python3
"""bench/bench_vs_torch.py: grpo2048's CPU model against PyTorch eager fp32 (transformers'
LlamaForCausalLM) on the same shape, threads and inputs, interleaved in one run.

Measures, round-robin for --rounds rounds (best of each side is reported, with the load average at the
start and the end of the run):
  - training: forward + backward of the token log-probabilities on B x T tokens (ours:
    bench_model --no-generate, llama_forward_logprobs + llama_backward_logprobs; torch: logits ->
    log_softmax -> gather -> mean -> backward), tokens/s;
  - generation: G completions of NEW tokens sampled from one P-token prompt at temperature 1 with no
    early stop (ours: bench_model --no-train, llama_generate; transformers: model.generate with
    do_sample=True, num_return_sequences=G, min_new_tokens=max_new_tokens=NEW), generated tokens/s;
  - ours: achieved GFLOP/s of the training step as a fraction of this process's sgemm peak.
With --bf16, our training runs with bf16 matrix products (bench_model --bf16, oneDNN) and torch's
training is measured twice: eager fp32 (the issue's reference) and under torch.autocast("cpu",
dtype=torch.bfloat16) (the like-for-like one: PyTorch's own bf16 products, also oneDNN); the fraction
of peak is then of the bf16 matmul peak measured in our process. Our generation then runs with bf16
products too (as `bf16: true` in the trainer), and transformers' generate is measured in fp32 (the
issue's reference) and on a bf16 copy of the model (like for like).
Prints the ratios ours / torch. Needs torch and transformers (an offline venv; not used by CI):
  python bench/bench_vs_torch.py --bench build/bench_model --shape smollm2 --threads 2 [--bf16]
"""
import argparse
import json
import os
import subprocess
import time


SHAPES = {
    "smollm2": dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                    num_attention_heads=9, num_key_value_heads=3, head_dim=64, rope_theta=100000.0,
                    tie_word_embeddings=True, rms_norm_eps=1e-5, max_position_embeddings=4096),
    "default": dict(vocab_size=1024, hidden_size=192, intermediate_size=512, num_hidden_layers=4,
                    num_attention_heads=6, num_key_value_heads=2, head_dim=32, rope_theta=10000.0,
                    tie_word_embeddings=True, rms_norm_eps=1e-5, max_position_embeddings=4096),
}


def ours(args, what):
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OMP_WAIT_POLICY="passive")
    cmd = [args.bench, "--shape", args.shape, "--json", "--iters", str(args.iters), "--batch", str(args.batch),
           "--seq", str(args.seq), "--rows", str(args.rows), "--prompt", str(args.prompt), "--new", str(args.new)]
    cmd.append("--no-generate" if what == "train" else "--no-train")
    if args.bf16:
        cmd.append("--bf16")
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {r["bench"]: r for r in rows}


def torch_model(args):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(1)
    cfg = LlamaConfig(**SHAPES[args.shape], attn_implementation="eager", bos_token_id=None, eos_token_id=None,
                      pad_token_id=None)
    model = LlamaForCausalLM(cfg).float()
    return model


def torch_train(args, model, bf16=False):
    import contextlib
    import torch
    g = torch.Generator().manual_seed(1)
    tok = torch.randint(0, model.config.vocab_size, (args.batch, args.seq), generator=g)
    best = 1e30
    model.train()
    for it in range(args.iters + 1):  # the first is a warm-up
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with ctx:
            logits = model(tok).logits[:, :-1]
        logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, tok[:, 1:, None]).squeeze(-1)
        logp.mean().backward()
        t = time.perf_counter() - t0
        if it > 0:
            best = min(best, t)
    return args.batch * args.seq / best


def torch_generate(args, model):
    import torch
    g = torch.Generator().manual_seed(2)
    prompt = torch.randint(0, model.config.vocab_size, (1, args.prompt), generator=g)
    model.eval()
    best = 1e30
    with torch.no_grad():
        for it in range(min(args.iters, 3)):
            t0 = time.perf_counter()
            out = model.generate(prompt, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                                 num_return_sequences=args.rows, max_new_tokens=args.new, min_new_tokens=args.new,
                                 pad_token_id=0, attention_mask=torch.ones_like(prompt))
            t = time.perf_counter() - t0
            assert out.shape[1] == args.prompt + args.new
            best = min(best, t)
    return args.rows * args.new / best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default="build/bench_model", help="path of grpo2048's bench_model")
    ap.add_argument("--shape", default="smollm2", choices=sorted(SHAPES))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--new", type=int, default=256)
    ap.add_argument("--skip", choices=["train", "generate"], default=None)
    ap.add_argument("--bf16", action="store_true", help="ours with bf16 products; torch fp32 and autocast bf16")
    args = ap.parse_args()

    import torch
    import transformers
    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()
    model = torch_model(args)
    res = {"ours_train": 0, "torch_train": 0, "torch_train_bf16": 0, "ours_gen": 0, "torch_gen": 0, "torch_gen_bf16": 0,
           "peak": 0, "ours_gflops": 0}
    model_bf16 = None
    for r in range(args.rounds):
        if args.skip != "train":
            o = ours(args, "train")
            res["ours_train"] = max(res["ours_train"], o["train"]["tokens_per_s"])
            if o["train"]["tokens_per_s"] >= res["ours_train"]:
                res["peak"], res["ours_gflops"] = o["peak"]["gflops"], o["train"]["gflops"]
            res["torch_train"] = max(res["torch_train"], torch_train(args, model))
            if args.bf16:
                res["torch_train_bf16"] = max(res["torch_train_bf16"], torch_train(args, model, bf16=True))
        if args.skip != "generate":
            o = ours(args, "generate")
            res["ours_gen"] = max(res["ours_gen"], o["generate"]["tokens_per_s"])
            res["torch_gen"] = max(res["torch_gen"], torch_generate(args, model))
            if args.bf16:
                if model_bf16 is None:
                    import copy
                    model_bf16 = copy.deepcopy(model).to(torch.bfloat16)
                res["torch_gen_bf16"] = max(res["torch_gen_bf16"], torch_generate(args, model_bf16))
        print(f"round {r + 1}: {json.dumps(res)}", flush=True)
    load1 = os.getloadavg()
    print(f"\nshape {args.shape}, {args.threads} threads, torch {torch.__version__} (MKL {torch.backends.mkl.is_available()}), "
          f"transformers {transformers.__version__}; load average {load0[0]:.1f} at start, {load1[0]:.1f} at end; "
          f"best of {args.rounds} interleaved rounds x {args.iters} iterations")
    if args.skip != "train":
        prec = "bf16 products" if args.bf16 else "fp32"
        print(f"training fwd+bwd B={args.batch} T={args.seq}: ours ({prec}) {res['ours_train']:.0f} tokens/s, torch "
              f"eager fp32 {res['torch_train']:.0f} tokens/s, ratio {res['ours_train'] / res['torch_train']:.2f}x; ours "
              f"{res['ours_gflops']:.1f} GFLOP/s = {100 * res['ours_gflops'] / res['peak']:.0f}% of the "
              f"{'bf16 matmul' if args.bf16 else 'sgemm'} peak {res['peak']:.1f} GFLOP/s measured in the same process")
        if args.bf16:
            print(f"training fwd+bwd, like for like: torch autocast bf16 {res['torch_train_bf16']:.0f} tokens/s, ratio "
                  f"{res['ours_train'] / res['torch_train_bf16']:.2f}x")
    if args.skip != "generate":
        prec = "bf16 products" if args.bf16 else "fp32"
        print(f"generation G={args.rows} P={args.prompt} new={args.new}: ours ({prec}) {res['ours_gen']:.1f} tokens/s, "
              f"transformers generate fp32 {res['torch_gen']:.1f} tokens/s, ratio {res['ours_gen'] / res['torch_gen']:.2f}x")
        if args.bf16:
            print(f"generation, like for like: transformers generate on a bf16 model {res['torch_gen_bf16']:.1f} tokens/s, "
                  f"ratio {res['ours_gen'] / res['torch_gen_bf16']:.2f}x")


if __name__ == "__main__":
    main()
