#!/usr/bin/env python3
"""tools/verify_gguf_conversion.py: checks a folder made by tools/gguf_to_hf.py against transformers'
own GGUF loader, and grpo2048 against both. Offline, not part of CI (it needs torch).

    tools/verify_gguf_conversion.py [--gguf FILE] [--model DIR] [--bin build/grpo2048] [--json OUT]

Defaults: the SmolLM2-135M-Instruct GGUF that tools/get_model.sh caches and its folder
models/smollm2-135m-instruct/. What it compares (figures in docs/models.md):
  1. logits: LlamaForCausalLM.from_pretrained(DIR) vs AutoModelForCausalLM.from_pretrained(GGUF
     folder, gguf_file=...) (transformers dequantizes with its own torch code and undoes llama.cpp's
     q/k permutation itself), fp32, on several prompts: max |difference| / max |logit| per prompt;
  2. tokenizer: tokenizers.Tokenizer.from_file(DIR/tokenizer.json) vs AutoTokenizer.from_pretrained(
     GGUF folder, gguf_file=...) on a few hundred strings (code, digits, Unicode, whitespace runs,
     special tokens), without special tokens added; AutoTokenizer on our folder (it must keep
     tokenizer.json as written); with llama.cpp's own tokenizer of the GGUF when
     llama-cpp-python is installed; and `grpo2048 tokenize` vs our tokenizer.json. transformers does
     not know the pre-tokenizer "smollm" and drops its Digits step: mismatches that this explains are
     counted apart (docs/models.md);
  3. greedy generation: transformers on DIR vs on the GGUF, and `grpo2048 generate --temperature 0
     --chat-template plain --logprobs` vs transformers on DIR (tokens, and the log-probabilities of
     the tokens grpo2048 chose under transformers' model). Where greedy paths part, the gap between the
     two best logits at that step is reported: a near tie is rounding, a clear gap is a bug.

Needs a venv with torch (the CPU is enough), transformers, accelerate, tokenizers, gguf, numpy,
safetensors (llama-cpp-python optional);
docs/models.md says how to make one (~/.cache/grpo2048/verify-venv). Exits 1 when a figure is
outside its tolerance.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("GRPO2048_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "grpo2048"))

try:
    import numpy as np
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM
except ImportError as e:
    sys.exit(f"verify_gguf_conversion: {e}; needs torch, transformers, accelerate, tokenizers, gguf (see docs/models.md)")

LOGIT_RTOL = 1e-4      # max |ours - transformers' GGUF| / max |logit|, per prompt
C_LOGPROB_ATOL = 1e-3  # grpo2048's log-probabilities vs transformers' on the same tokens (fp32 both)

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "<|im_start|>user\nWrite a Python function that returns the best move in 2048.<|im_end|>\n<|im_start|>assistant\n",
    "1, 2, 3, 5, 8, 13, 21,",
    "Once upon a time, in a small village by the sea, there lived",
    "Translate to French: I would like a cup of coffee, please.\n",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWhat is 17 * 23?<|im_end|>\n<|im_start|>assistant\n",
    "import numpy as np\n\nboard = np.zeros((4, 4), dtype=int)\n",
]


def test_strings(n):
    """A fixed list of awkward strings, then random mixes of fragments, n in all."""
    fixed = [
        "", " ", "  ", "\n", "\n\n", "\t", " \t \n", "hello", " hello", "hello ", "Hello World!", "HELLO world",
        "don't", "I'm", "you'll", "they've", "we'd", "it's", "DON'T", "I'M", "o'clock",
        "2048", " 2048", "12345678901234567890", "3.14159", "-42", "+1 (555) 123-4567", "1e-5", "0x1F", "v1.2.3",
        "x1y2z3", "a1", "1a", "²", "½", "Ⅻ", "١٢٣", "١٢٣ arabic digits", "１２３", "ⅷ",
        "def strategy(board):\n    return 'left'\n", "if x == 0:\n\treturn None\n", "    indented", "for i in range(10):",
        "a  b   c    d", "trailing   ", "   leading", "line1\nline2\r\nline3\r", "tabs\t\tand\tspaces",
        "héllo wörld", "naïve café", "e\u0301", "Ångström", "日本語のテキスト", "中文字符和English混合",
        "한국어 텍스트", "Привет, мир!", "مرحبا بالعالم", "שלום", "ελληνικά", "हिन्दी", "ไทย",
        "emoji 😀🎉👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "∑∫√∞≠≤", "→←↑↓", "©®™", "\u200b zero width", "\u00a0nbsp",
        "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>user\nhi<|im_end|>", "a<|im_end|>b",
        "<|im_start|><|im_end|>", "<|im_start", "im_start|>", "<repo_name>x<file_sep>y",
        "```python\nprint('hi')\n```", "{\"key\": [1, 2, 3]}", "<html><body>x</body></html>", "$x^2 + y^2$",
        "!!!???...", "----", "====", "a.b.c", "foo_bar_baz", "CamelCaseWord", "snake_case_2048",
        "https://example.com/path?q=1&r=2", "user@example.com", "C:\\Windows\\path", "#include <stdio.h>",
    ]
    frags = [
        "the", " the", "The", " quick", " brown", " fox", "2048", " 4", "0", "99", " ", "  ", "\n", "\n\n", "\t",
        "def", " strategy", "(", "board", ")", ":", "    ", "return", " 'up'", "'", "\"", "é", "ü", "日本", "語",
        "😀", "<|im_start|>", "<|im_end|>", "user", "assistant", ".", ",", "!", "?", "-", "_", "#", "3.5",
        "１", "²", "Ω", "ß", "Ж", "ا", "x", "ABC", "don't", "'s", "'LL", "\r\n", "\u00a0", "  \n  ",
    ]
    rng = random.Random(2048)
    out = list(fixed)
    while len(out) < n:
        out.append("".join(rng.choice(frags) for _ in range(rng.randint(1, 12))))
    return out[:n]


def run_json(cmd):
    r = subprocess.run(cmd, capture_output=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:2])} exited {r.returncode}: {r.stderr.decode(errors='replace').strip()}")
    return json.loads(r.stdout.decode("utf-8", errors="replace"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf", default=os.path.join(CACHE, "downloads", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "smollm2-135m-instruct"))
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "grpo2048"), help="grpo2048 (empty: skip it)")
    ap.add_argument("--strings", type=int, default=400, help="tokenizer test strings")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args()
    for p in (a.gguf, a.model):
        if not os.path.exists(p):
            sys.exit(f"verify_gguf_conversion: {p} does not exist (tools/get_model.sh smollm2-135m-instruct makes it)")
    use_bin = bool(a.bin)
    if use_bin and not os.access(a.bin, os.X_OK):
        sys.exit(f"verify_gguf_conversion: {a.bin} is not an executable (build grpo2048, or pass --bin '')")
    torch.manual_seed(0)
    torch.set_grad_enabled(False)
    gdir, gname = os.path.dirname(os.path.abspath(a.gguf)), os.path.basename(a.gguf)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?") \
        if os.path.exists("/proc/cpuinfo") else "?"
    fig = {"date": time.strftime("%Y-%m-%d"), "machine": f"{cpu}, {os.cpu_count()} cores", "gguf": a.gguf, "model": a.model,
           "torch": torch.__version__, "transformers": __import__("transformers").__version__,
           "tokenizers": __import__("tokenizers").__version__, "gguf_package": __import__("importlib.metadata").metadata.version("gguf")}
    ok = True

    # 1. Logits.
    t0 = time.time()
    ours = LlamaForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
    ref = AutoModelForCausalLM.from_pretrained(gdir, gguf_file=gname, dtype=torch.float32).eval()
    print(f"loaded both models in {time.time() - t0:.1f} s ({type(ref).__name__} from the GGUF)")
    # Parameters themselves: transformers dequantizes the GGUF with its own torch code.
    sd_o, sd_r = ours.state_dict(), ref.state_dict()
    common = sorted(set(sd_o) & set(sd_r))
    p_diff = max((sd_o[k] - sd_r[k]).abs().max().item() for k in common)
    p_same = sum(torch.equal(sd_o[k], sd_r[k]) for k in common)
    fig["params_compared"], fig["params_bitwise_equal"], fig["params_max_abs_diff"] = len(common), p_same, p_diff
    fig["params_only_in_one"] = sorted(set(sd_o) ^ set(sd_r))
    print(f"0. parameters: {p_same} of {len(common)} tensors bitwise equal, max |diff| {p_diff:.3e}"
          f"{', only in one model: ' + str(fig['params_only_in_one']) if fig['params_only_in_one'] else ''}")
    tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
    worst_rel, worst_abs = 0.0, 0.0
    for p in PROMPTS:
        ids = torch.tensor([tok.encode(p, add_special_tokens=False).ids])
        lo, lr = ours(ids).logits[0], ref(ids).logits[0]
        d = (lo - lr).abs().max().item()
        rel = d / lr.abs().max().item()
        worst_rel, worst_abs = max(worst_rel, rel), max(worst_abs, d)
        print(f"  logits {ids.shape[1]:3d} tokens: max |diff| {d:.3e}, relative {rel:.3e}  {p[:40]!r}")
    fig["logits_max_abs_diff"], fig["logits_max_rel_diff"] = worst_abs, worst_rel
    fig["logits_prompts"] = len(PROMPTS)
    ok &= worst_rel <= LOGIT_RTOL
    print(f"1. logits on {len(PROMPTS)} prompts: max relative difference {worst_rel:.2e} (tolerance {LOGIT_RTOL:g})")

    # 2. Tokenizer.
    hf_tok = AutoTokenizer.from_pretrained(gdir, gguf_file=gname)
    strings = test_strings(a.strings)
    mism = []
    for s in strings:
        x, y = tok.encode(s, add_special_tokens=False).ids, hf_tok.encode(s, add_special_tokens=False)
        if x != y:
            mism.append((s, x, y))
    fig["tokenizer_strings"] = len(strings)
    fig["tokenizer_mismatches_vs_transformers_gguf"] = len(mism)
    # transformers builds the tokenizer of a "gpt2" GGUF without the pre-tokenizer that
    # tokenizer.ggml.pre names when it does not know the name ("smollm" among them): ByteLevel alone,
    # no Digits step. A mismatch is explained when our tokenizer without Digits gives transformers' ids.
    nod = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
    from tokenizers import pre_tokenizers
    nod.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    unexplained = [(s, x, y) for s, x, y in mism if nod.encode(s, add_special_tokens=False).ids != y]
    fig["tokenizer_mismatches_unexplained"] = len(unexplained)
    fig["tokenizer_mismatches_all_with_digits"] = all(any(ch.isnumeric() for ch in s) for s, _, _ in mism)
    print(f"2. tokenizer.json vs transformers' GGUF tokenizer: {len(mism)} of {len(strings)} strings differ; "
          f"{len(mism) - len(unexplained)} of them only because transformers drops the Digits step of "
          f"pre-tokenizer \"smollm\", {len(unexplained)} otherwise")
    for s, x, y in (unexplained or mism)[:8]:
        j = next((i for i, (u, v) in enumerate(zip(x, y)) if u != v), min(len(x), len(y)))
        print(f"   {s!r}: from token {j}: ours {[tok.id_to_token(i) for i in x[j:j + 4]]}, "
              f"transformers {[tok.id_to_token(i) for i in y[j:j + 4]]}")
    ok &= not unexplained
    # llama.cpp's own tokenizer, when llama-cpp-python is installed (pip install llama-cpp-python).
    try:
        from llama_cpp import Llama
    except ImportError:
        Llama = None
        print("   (llama-cpp-python not installed: no comparison with llama.cpp's tokenizer)")
    if Llama is not None:
        lc = Llama(model_path=a.gguf, vocab_only=True, verbose=False)
        lm = []
        for s in strings:
            y = lc.tokenize(s.encode("utf-8"), add_bos=False, special=True)
            x = tok.encode(s, add_special_tokens=False).ids
            if x != y:
                lm.append((s, x, y))
        fig["tokenizer_mismatches_vs_llama_cpp"] = len(lm)
        fig["llama_cpp_python"] = __import__("importlib.metadata").metadata.version("llama-cpp-python")
        print(f"   tokenizer.json vs llama.cpp's tokenizer of the GGUF: {len(lm)} of {len(strings)} strings differ")
        for s, x, y in lm[:8]:
            j = next((i for i, (u, v) in enumerate(zip(x, y)) if u != v), min(len(x), len(y)))
            print(f"   {s!r}: from token {j}: ours {[tok.id_to_token(i) for i in x[j:j + 4]]}, "
                  f"llama.cpp {[tok.id_to_token(i) for i in y[j:j + 4]]}")
        ok &= not lm
    # transformers loading our folder must keep tokenizer.json as written (Digits step included).
    own = AutoTokenizer.from_pretrained(a.model)
    own_bad = sum(own.encode(s, add_special_tokens=False) != tok.encode(s, add_special_tokens=False).ids
                  for s in strings)
    fig["tokenizer_mismatches_transformers_on_our_folder"] = own_bad
    print(f"   AutoTokenizer.from_pretrained(our folder) ({type(own).__name__}) vs tokenizer.json: "
          f"{own_bad} of {len(strings)} strings differ")
    ok &= own_bad == 0
    dec_bad = sum(tok.decode(tok.encode(s, add_special_tokens=False).ids, skip_special_tokens=False) != s
                  for s in strings)
    fig["tokenizer_roundtrip_failures"] = dec_bad
    print(f"   our tokenizer.json decode(encode(s)) != s for {dec_bad} strings")
    if use_bin:
        cm = []
        for s in strings:
            if s.startswith("--"):  # grpo2048 would read it as an option
                continue
            c = run_json([a.bin, "tokenize", "--model", a.model, s])["ids"]
            x = tok.encode(s, add_special_tokens=False).ids
            if c != x:
                cm.append((s, c, x))
        n_c = sum(1 for s in strings if not s.startswith("--"))
        fig["c_tokenize_strings"], fig["c_tokenize_mismatches"] = n_c, len(cm)
        print(f"   grpo2048 tokenize vs tokenizer.json: {len(cm)} of {n_c} strings differ")
        for s, c, x in cm[:10]:
            print(f"   {s!r}: grpo2048 {c[:12]} / tokenizers {x[:12]}")
        ok &= not cm

    # 3. Greedy generation.
    n = a.max_new_tokens
    same_tf, same_c, worst_lp, gen_rows = 0, 0, 0.0, []
    for p in PROMPTS:
        ids = torch.tensor([tok.encode(p, add_special_tokens=False).ids])
        go = ours.generate(ids, max_new_tokens=n, do_sample=False, pad_token_id=2)[0, ids.shape[1]:].tolist()
        gr = ref.generate(ids, max_new_tokens=n, do_sample=False, pad_token_id=2)[0, ids.shape[1]:].tolist()
        row = {"prompt": p, "transformers_ours": go, "transformers_gguf": gr, "same_tf": go == gr}
        same_tf += go == gr
        if use_bin:
            g = run_json([a.bin, "generate", "--model", a.model, "--prompt", p, "--chat-template", "plain",
                          "--temperature", "0", "--max-new-tokens", str(n), "--logprobs"])
            c, clp = g["ids"], g["logprobs"]
            row["grpo2048"] = c
            # Transformers' log-probabilities of grpo2048's tokens, and its argmax at each step.
            full = torch.tensor([ids[0].tolist() + c])
            lg = torch.log_softmax(ours(full).logits[0].double(), -1)
            diverge = None
            for j, t in enumerate(c):
                r = lg[ids.shape[1] - 1 + j]
                worst_lp = max(worst_lp, abs(r[t].item() - clp[j]))
                if diverge is None and t != int(r.argmax()):
                    top2 = torch.topk(r, 2).values
                    diverge = {"step": j, "grpo2048": t, "transformers": int(r.argmax()),
                               "top2_gap": (top2[0] - top2[1]).item()}
            row["same_c"] = c == go or (diverge is None and go[:len(c)] == c and (not c or c[-1] == 2))
            row["c_divergence"] = diverge
            same_c += row["same_c"]
        gen_rows.append(row)
        print(f"  {p[:40]!r}: tf(ours)==tf(gguf) {go == gr}" +
              (f", grpo2048==tf(ours) {row['same_c']}" + (f" (parts at step {diverge['step']}, top-2 logit gap "
               f"{diverge['top2_gap']:.2e})" if diverge else "") if use_bin else ""))
    fig["generation_prompts"], fig["generation_max_new_tokens"] = len(PROMPTS), n
    fig["generation_same_transformers_ours_vs_gguf"] = same_tf
    print(f"3. greedy {n} tokens: transformers on our folder == on the GGUF for {same_tf} of {len(PROMPTS)} prompts")
    ok &= same_tf == len(PROMPTS)
    if use_bin:
        fig["generation_same_grpo2048_vs_transformers"] = same_c
        fig["grpo2048_logprob_max_abs_diff"] = worst_lp
        print(f"   grpo2048 == transformers (our folder) for {same_c} of {len(PROMPTS)} prompts; "
              f"log-probabilities of grpo2048's tokens differ by at most {worst_lp:.2e}")
        ok &= worst_lp <= C_LOGPROB_ATOL
        near_ties = all(r.get("same_c") or (r["c_divergence"] and r["c_divergence"]["top2_gap"] < 1e-3)
                        for r in gen_rows)
        ok &= near_ties
    fig["generations"] = gen_rows
    fig["ok"] = bool(ok)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(fig, f, indent=1, ensure_ascii=False)
    print("OK" if ok else "FAILED: a figure is outside its tolerance (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
