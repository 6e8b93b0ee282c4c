#!/usr/bin/env python3
"""tools/make_tokenizer_fixtures.py: reference ids from Hugging Face `tokenizers` for
tests/model/test_tokenizer.c.

For each tokenizer it encodes a fixed corpus of a few hundred strings (Python code, 2048 strategies,
several scripts, emoji, combining characters, whitespace runs, digit runs, contractions, special
tokens inline, long runs, seeded random mixes) with encode(text, add_special_tokens=False), and
decodes a few id lists with skip_special_tokens true and false. Output, one JSON object per line, in
tests/fixtures/tokenizer/<name>.jsonl:
    {"text": str, "ids": [int, ...]}                               an encode case
    {"decode": [int, ...], "skip_special": bool, "text": str}      a decode case
Texts never contain NUL (the C test reads them with cJSON, whose strings end at NUL).

Tokenizers:
  gpt2, llama3, qwen3   the real files in ../shared/fixtures/hf/<name>/tokenizer.json (relative to
                        the repo root); skipped with a note when absent. Not copied into the repo.
  tiny                  tests/fixtures/tokenizer/tiny (made by tools/train_tokenizer.py from
                        tests/fixtures/tokenizer/tiny_train.jsonl).
  tiny_variant          written here to tests/fixtures/tokenizer/tiny_variant/: tiny's vocab and
                        merges with an NFC normalizer, a Sequence[Digits(individual_digits),
                        ByteLevel(add_prefix_space)] pre-tokenizer and added tokens using lstrip,
                        rstrip, single_word and normalized, to cover what the real files do not.
Also writes tests/fixtures/tokenizer/nfc.jsonl: {"in": str, "out": str} pairs from tokenizers' NFC
normalizer (decomposed forms of every composite, Hangul, random combining-mark sequences, marks newer
than Unicode 9.0).

Usage: python3 tools/make_tokenizer_fixtures.py     (needs `pip install tokenizers`)
"""
import json
import os
import random
import sys
import unicodedata

import tokenizers
from tokenizers import Tokenizer, normalizers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
HF = os.path.join(os.path.dirname(ROOT), "shared", "fixtures", "hf")

STRATEGIES = [
    'def strategy(board):\n    return "W"\n',
    'def strategy(board):\n    import random\n    return random.choice(["W", "A", "S", "D"])\n',
    '''def strategy(board):
    """Keep the largest tile in a corner; prefer merges."""
    def merges(b):
        n = 0
        for row in b:
            for a, c in zip(row, row[1:]):
                if a and a == c:
                    n += 1
        return n
    cols = [list(c) for c in zip(*board)]
    if merges(board) >= merges(cols):
        return "A"
    return "W"
''',
    'def strategy(board):\n\tempty = sum(r.count(0) for r in board)\n\treturn "S" if empty < 4 else "D"\n',
    "```python\ndef strategy(board):\n    return 'D'\n```",
    "def strategy(board):\r\n    best, move = -1, 'W'\r\n    for m in 'WASD':\r\n        s = score(board, m)\r\n        if s > best:\r\n            best, move = s, m\r\n    return move\r\n",
    "class Game2048:\n    def __init__(self, size=4):\n        self.size = size\n        self.grid = [[0] * size for _ in range(size)]\n\n    def __repr__(self):\n        return f\"Game2048(size={self.size!r})\"\n",
    "import numpy as np\nx = np.zeros((4, 4), dtype=np.int64)  # 4x4 board\nprint(x.sum(), x.max(), 2**11 == 2048)\n",
    "    if board[0][0] >= 1024 and board[0][1] == 512:\n        return 'A'  # chase the corner\n",
    "lambda b: max('WASD', key=lambda m: heuristic(b, m))",
]

BASE = [
    "", " ", "  ", "   ", "\n", "\t", "\r\n", "a", "A", "Hello world", "Hello  world", " Hello", "Hello ",
    "hello,world", "HELLO WORLD!", "The quick brown fox jumps over the lazy dog.",
    # contractions and quotes
    "I'm", "I'M", "you're", "YOU'RE", "we've", "they'll", "she'd", "don't", "isn't", "'s", "'S",
    "O'Neil's", "rock'n'roll", "'\u017f", "'S'T'RE'VE'M'LL'D", "it\u2019s", "\"quoted\"", "'single'",
    "l'été", "''", "'''docstring'''",
    # numbers
    "1", "12", "123", "1234", "12345", "12345678901234567890", "3.14159", "1,000,000", "2048", "-42",
    "0x1F", "1e-10", "v1.2.3", "2024-01-31", "10:45pm", "\u0660\u0661\u0662\u0663\u0664", "\uff11\uff12\uff13",
    "x\u00b2 + y\u00b3", "\u216b", "\u00bd", "\U0001d7d8\U0001d7d9", "\u0967\u0968\u0969", "abc123def", "a1b2c3",
    # whitespace
    "a  b", "a   b", "a\tb", "a\t\tb", "a\nb", "a\n\nb", "a\r\nb", "a \n b", "   \n   ", "x    ", "\n\n\n",
    " \t \n", "\u00a0", "a\u00a0b", "\u3000", "a\u2028b", "\x0b\x0c", "line1\n    indented\n\tTab",
    "trailing   \n", "  leading", "\n  \n  \n", "a \t b", "\t\tdef f():\n\t\t\tpass", "x\r\r\ny", "end.\n",
    # scripts
    "\u4f60\u597d\uff0c\u4e16\u754c\uff01", "\u8fd9\u662f\u4e00\u4e2a2048\u6e38\u620f\u7b56\u7565\u3002",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3002\u30ab\u30bf\u30ab\u30ca\u3082\u3002",
    "\ud55c\uad6d\uc5b4 \ubb38\uc7a5\uc785\ub2c8\ub2e4.", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u0644\u063a\u0629 \u062c\u0645\u064a\u0644\u0629",
    "\u05e2\u05d1\u05e8\u05d9\u05ea", "\u0939\u093f\u0928\u094d\u0926\u0940 \u092d\u093e\u0937\u093e",
    "\u0420\u0443\u0441\u0441\u043a\u0438\u0439 \u044f\u0437\u044b\u043a", "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac",
    "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22", "Ti\u1ebfng Vi\u1ec7t c\u00f3 d\u1ea5u", "T\u00fcrk\u00e7e \u0131\u0130",
    "Stra\u00dfe \u00c4\u00d6\u00dc", "\u00e9\u00e8\u00ea\u00eb \u00e7\u00f1", "\u10e5\u10d0\u10e0\u10d7\u10e3\u10da\u10d8",
    "\u1403\u14c4\u1483\u144e\u1450\u1466", "\u0d2e\u0d32\u0d2f\u0d3e\u0d33\u0d02",
    # emoji
    "\U0001f600", "\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466",
    "\U0001f1eb\U0001f1f7", "\u2764\ufe0f", "I \u2764\ufe0f 2048 \U0001f389\U0001f389", "\u2b06\ufe0f\u2b07\ufe0f\u2b05\ufe0f\u27a1\ufe0f",
    # combining characters / normalization
    "e\u0301", "caf\u0065\u0301", "a\u0308", "n\u0303", "\u1100\u1161\u11a8", "A\u030a", "\u212b", "\u0958",
    "x\u1df6\u0301", "o\u0302\u0323", "o\u0323\u0302", "\u1e9b\u0323", "\u00c5", "\ufb01", "\u0041\u0301\u0316",
    "q\u0307\u0323", "\u0915\u093c", "\u0b47\u0b3e", "\u1100\u1161", "\uac00\u11a8", "\u0301abc",
    "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dalgo",
    "s\u0323\u0307", "\u2126", "\u00c5ngstr\u00f6m \u212bngstr\u00f6m", "\u0387\u037e", "\u1109\u1173\u11af",
    # special tokens inline
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", "<|endoftext|>", "a<|endoftext|>b",
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>",
    "<think>\n\n</think>\n\n", "<|im_start|><|im_end|>", "<|im_start", "<|im_start|>>", "<<|endoftext|>>",
    " <|endoftext|> ", "<|reserved_special_token_5|>", "<tool_call>{\"name\": \"f\"}</tool_call>",
    "<|fim_prefix|>def f(<|fim_suffix|>):<|fim_middle|>", "<|im_end|><|endoftext|><|eot_id|>", "<|eot_id|>\n",
    "text<|im_start|>", "<|IM_START|>", "< |im_start| >", "<|python_tag|>print(1)<|eom_id|>",
    # tiny_variant's added tokens
    "a <mask> b", "<mask>", "  <mask>  x", "x<rs>   y", "<rs>\n\nz", "Xword Xwords aXword Xword. _Xword",
    "(Xword)", "\u1e69 s\u0307\u0323 s\u0323\u0307x", "\u00e9\u00e9", "  <mask><mask>  ",
    # control and odd characters
    "\x1b[31mred\x1b[0m", "\x7f", "\x01\x02\x03", "\ufeffbom", "zero\u200bwidth", "a\u200db", "\ue000\uf8ff",
    "\uffff", "\U0010ffff", "\U0001f000", "\u0085next", "\u180e", "\u061c", "\u00ad", "\U000e0041",
    # misc code and symbols
    "http://example.com/path?q=1&r=2#frag", "email@example.com", "#include <stdio.h>\nint main(void) { return 0; }\n",
    "JSON {\"a\": [1, 2.5, null], \"b\": true}", "$$\\frac{a}{b} = \\sum_{i=0}^{n} x_i$$", "C++ std::vector<int> v{1,2};",
    "!!!", "???", "...", "\u2014\u2013", "\u00ab\u00bb", "``code``", "\\\\", "////", "====", "----", "____", "****",
    "a->b => c <= d != e", "x += 1; y -= 2; z *= 3", "if (a && b || !c) {}", "@decorator\ndef f(*args, **kwargs): ...",
    "SELECT * FROM t WHERE x = 'y';", "<html><body>Hi &amp; bye</body></html>", "~/path/to/file.txt",
    "W", "A", "S", "D", "\"W\"", "return \"W\"", "WASD", "wasd",
]


def long_cases():
    return [
        "a" * 300, " " * 300, "\n" * 50, "ab" * 200, "hello " * 60, "\t" * 40 + "x", "9" * 100,
        "\u4f60" * 80, "\U0001f600" * 30, "x" + " " * 100 + "y", "=" * 120, "\u00e9" * 50, "e\u0301" * 40,
        "abcdefghijklmnopqrstuvwxyz" * 8, "".join(chr(0x41 + i % 26) for i in range(256)),
    ]


def random_cases(rng, n):
    """Seeded mixes of fragments: ASCII, punctuation, whitespace, digits, several scripts, marks."""
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "0123456789",
        " \t\n\r",
        "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
        "".join(chr(c) for c in range(0xC0, 0x250)),
        "".join(chr(c) for c in range(0x391, 0x3CA)) + "".join(chr(c) for c in range(0x410, 0x450)),
        "".join(chr(c) for c in range(0x4E00, 0x4E80)) + "".join(chr(c) for c in range(0x3041, 0x3097)),
        "".join(chr(c) for c in range(0xAC00, 0xAC80)) + "".join(chr(c) for c in range(0x1100, 0x1176)),
        "".join(chr(c) for c in range(0x300, 0x370)) + "\u1df6\u1abf\u0898\u0c3c",
        "".join(chr(c) for c in range(0x1F600, 0x1F650)) + "\u200d\ufe0f",
        "".join(chr(c) for c in range(0x900, 0x980)) + "".join(chr(c) for c in range(0x600, 0x660)),
    ]
    frags = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<think>", "<mask>", "<rs>", "Xword",
             "'s", "'ll", "def ", "return ", "board", "    ", "\n\n", "2048", "'", "  "]
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 8)):
            if rng.random() < 0.2:
                parts.append(rng.choice(frags))
            else:
                pool = rng.choice(pools)
                parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 12))))
        out.append("".join(parts))
    return out


def chat_cases():
    user = "Write a 2048 strategy.\nReturn only code."
    return [
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n" + STRATEGIES[2] + "<|im_end|>",
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou write code.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
        + user + "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
    ]


def corpus():
    rng = random.Random(2048)
    texts = BASE + STRATEGIES + long_cases() + chat_cases() + random_cases(rng, 160)
    for t in texts:
        assert "\x00" not in t
    return texts


def write_fixture(name, tok, texts):
    path = os.path.join(OUT, name + ".jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for t in texts:
            ids = tok.encode(t, add_special_tokens=False).ids
            f.write(json.dumps({"text": t, "ids": ids}, ensure_ascii=False) + "\n")
        # decode cases: texts with special tokens, with and without skipping them
        for t in texts:
            if "<|" not in t and "<mask>" not in t and "<think>" not in t:
                continue
            ids = tok.encode(t, add_special_tokens=False).ids
            for skip in (True, False):
                f.write(json.dumps({"decode": ids, "skip_special": skip,
                                    "text": tok.decode(ids, skip_special_tokens=skip)}, ensure_ascii=False) + "\n")
    print("wrote %s (%d bytes)" % (path, os.path.getsize(path)))


def make_variant():
    """tiny with NFC, Digits + ByteLevel(add_prefix_space) and flagged added tokens."""
    with open(os.path.join(OUT, "tiny", "tokenizer.json"), encoding="utf-8") as f:
        j = json.load(f)
    j["normalizer"] = {"type": "NFC"}
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}]}
    n = max(j["model"]["vocab"].values()) + 1
    extra = [("<mask>", dict(lstrip=True, rstrip=False, single_word=False, normalized=False, special=True)),
             ("<rs>", dict(lstrip=False, rstrip=True, single_word=False, normalized=False, special=False)),
             ("Xword", dict(lstrip=False, rstrip=False, single_word=True, normalized=True, special=False)),
             ("\u1e69", dict(lstrip=False, rstrip=False, single_word=False, normalized=True, special=False))]
    for i, (content, flags) in enumerate(extra):
        d = {"id": n + i, "content": content}
        d.update(flags)
        j["added_tokens"].append(d)
    d = os.path.join(OUT, "tiny_variant")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False, indent=1)
    return Tokenizer.from_file(os.path.join(d, "tokenizer.json"))


def nfc_cases(rng):
    nfc = normalizers.NFC()
    ins = []
    for cp in range(0xA0, 0x30000):
        c = chr(cp)
        if unicodedata.category(c) == "Cs" or (0xAC00 <= cp <= 0xD7A3 and cp % 37):
            continue  # Hangul syllables: every 37th (the rest is the same arithmetic)
        d = unicodedata.normalize("NFD", c)
        if d != c:
            ins.append(d)
            if unicodedata.decomposition(c) and not unicodedata.decomposition(c).startswith("<"):
                ins.append(c)  # singletons and excluded composites normalize away from themselves
    marks = [chr(cp) for cp in range(0x300, 0x1F000) if unicodedata.combining(chr(cp))]
    bases = "aeiouAEIOUnsczgkq\u0915\u05d0\u03b1\u0430\u1100\uac00 "
    for _ in range(1500):
        ins.append(rng.choice(bases) + "".join(rng.choice(marks) for _ in range(rng.randint(1, 4))))
    for _ in range(200):
        ins.append("".join(chr(rng.choice([0x1100 + rng.randrange(19), 0x1161 + rng.randrange(21),
                                           0x11A7 + rng.randrange(28), 0xAC00 + rng.randrange(11172)]))
                           for _ in range(rng.randint(2, 5))))
    path = os.path.join(OUT, "nfc.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for s in ins:
            f.write(json.dumps({"in": s, "out": nfc.normalize_str(s)}, ensure_ascii=False) + "\n")
    print("wrote %s (%d bytes, %d cases)" % (path, os.path.getsize(path), len(ins)))


def main():
    print("tokenizers", tokenizers.__version__)
    texts = corpus()
    for name in ("gpt2", "llama3", "qwen3"):
        p = os.path.join(HF, name, "tokenizer.json")
        if not os.path.exists(p):
            print("skip %s: %s not found" % (name, p), file=sys.stderr)
            continue
        write_fixture(name, Tokenizer.from_file(p), texts)
    write_fixture("tiny", Tokenizer.from_file(os.path.join(OUT, "tiny", "tokenizer.json")), texts)
    write_fixture("tiny_variant", make_variant(), texts)
    nfc_cases(random.Random(9))


if __name__ == "__main__":
    main()
