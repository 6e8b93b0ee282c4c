#!/usr/bin/env python3
"""tools/train_tokenizer.py: trains a small byte-level BPE tokenizer for grpo2048's embedded policy.

Input: a JSONL file whose lines are {"prompt": str, "completion": str}; both texts are training text.
Output: a folder with
  tokenizer.json         BPE model (no unk token), ByteLevel pre-tokenizer (GPT-2 regex, no prefix
                         space), ByteLevel decoder, the full 256-byte initial alphabet (so any text
                         encodes), and the special tokens <|endoftext|>, <|im_start|>, <|im_end|>
                         with ids 0, 1, 2;
  tokenizer_config.json  eos_token "<|im_end|>", pad_token "<|endoftext|>", bos_token null, and a
                         ChatML chat_template (the format model/chat_template.c renders as "chatml").
The vocabulary size counts the 3 special tokens and the 256 bytes, so it must be at least 259; the
trainer stops early when no pair occurs min_frequency times.

The result loads in grpo2048's C tokenizer (model/tokenizer.c), which reproduces these ids exactly
(tests/model/test_tokenizer.c checks tests/fixtures/tokenizer/tiny, made by this script).

Usage: python3 tools/train_tokenizer.py DATA.jsonl OUT_DIR [--vocab-size 512] [--min-frequency 2]
Needs the `tokenizers` package (pip install tokenizers).
"""
import argparse
import json
import os
import sys

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def read_texts(path):
    """Yields the prompt and completion of every line; exits with a message naming a bad line."""
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit("%s:%d: not JSON: %s" % (path, lineno, e))
            if not isinstance(rec, dict) or not isinstance(rec.get("prompt"), str) or not isinstance(rec.get("completion"), str):
                sys.exit('%s:%d: expected {"prompt": string, "completion": string}' % (path, lineno))
            yield rec["prompt"]
            yield rec["completion"]


def train(data, out_dir, vocab_size=512, min_frequency=2):
    if vocab_size < len(SPECIAL_TOKENS) + 256:
        sys.exit("--vocab-size %d is too small: the 3 special tokens and 256 bytes need %d"
                 % (vocab_size, len(SPECIAL_TOKENS) + 256))
    texts = list(read_texts(data))
    if not texts:
        sys.exit("%s: no training lines" % data)
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    for i, s in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(s) == i, (s, tok.token_to_id(s))
    os.makedirs(out_dir, exist_ok=True)
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "add_bos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 4096,
        "chat_template": CHATML_TEMPLATE,
    }
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    return tok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", help='JSONL of {"prompt", "completion"} lines')
    ap.add_argument("out_dir", help="output folder (tokenizer.json, tokenizer_config.json)")
    ap.add_argument("--vocab-size", type=int, default=512)
    ap.add_argument("--min-frequency", type=int, default=2)
    a = ap.parse_args()
    tok = train(a.data, a.out_dir, a.vocab_size, a.min_frequency)
    print("wrote %s: vocab size %d" % (a.out_dir, tok.get_vocab_size()))


if __name__ == "__main__":
    main()
