#!/usr/bin/env python3
"""tools/make_sft_data.py: builds (and verifies) the SFT corpus for grpo2048's embedded default policy.

grpo2048 ships a tiny causal LM, trained from scratch by `grpo2048 sft`, that writes Python 2048
strategies; GRPO then improves it. For RL to have something to choose between, the SFT corpus teaches
a VARIED mix of programs: good ones, poor ones and broken ones. This script writes that corpus as JSONL,
one object per line:

    {"prompt": PROMPT, "completion": "```python\\ndef strategy(board):\\n    ...\\n```",
     "kind": KIND, "category": "good" | "poor" | "broken"}

PROMPT is the public Unsloth 2048 notebook's prompt, byte for byte. Kinds and categories:

    good   corner          fixed corner preference order, falls back when a move changes nothing
           greedy_empty    one-step lookahead maximising the number of empty cells
           greedy_merge    one-step lookahead maximising the merge score
           lookahead_bonus one-step lookahead on empty cells plus a corner bonus / smoothness penalty
    poor   constant        always the same move (gets stuck)
           cycle           a fixed cycle of moves indexed by a counter kept on the function, by the
                           length of a history list on the function, or by the board (tile count/sum)
           random          random.choice of the moves
    broken syntax_error    a good/poor program with a missing colon, bad indentation or an unclosed
                           parenthesis (compile() fails)
           banned_import   imports numpy / torch / pandas (not standard library)
           endless_loop    a loop that never exits (some are corner searches that forget to advance
                           their index: endless once the preferred move changes nothing)
           invalid_return  returns something that is not one of "W", "A", "S", "D" (some are good
                           programs whose return wraps the move: index, list, number)
           exception       raises (IndexError, NameError, TypeError, AttributeError) on the first call
                           (some are good programs with a misspelt helper call or an off-by-one)

Every program varies: identifiers and helper names come from pools, the preferred corner and move
order are drawn, comments come and go, code shapes have equivalent alternatives (orientation by an
inline transpose, a helper, a dict of views or a zip; four row-slide algorithms; loop shapes), and
constants (bonuses, penalty scales) change. A completion is at most 700 characters, fences included:
a longer draw is drawn again. Cycle strategies that keep a counter on the function (strategy.n) need
the name `strategy` to resolve in the function's globals, as it does after a plain exec of the code.

Size: every line repeats the 430-character prompt (450 bytes as JSON), 1.35 MB for 3000 lines before
any completion, so the corpus cannot fit a 2 MB budget with completions of a few hundred characters;
--check prints the size and a warning above 2 MB.

Parts, top to bottom:
  * the reference 2048 game (slide_line, apply_move, can_move, spawn_tile, new_board): used only by
    the verifier, written independently of the generated programs (coordinate lists, no transposes);
  * Prog, a small source builder that draws identifiers from pools without reusing one;
  * building blocks shared by the program generators (move orders, board orientation, row slide,
    "does this move change the board" predicate, comments);
  * one generator per kind (gen_<kind>(rng) -> full source of `def strategy(board): ...`);
  * build_corpus(n, seed): the deterministic corpus (mix 45% good / 30% poor / 25% broken, split evenly
    over a category's kinds, shuffled with the same seed);
  * the verifier (--check / --check-only): static checks over every line, then for a sample of each
    kind it runs the strategy in a subprocess (`--worker` mode of this very script, 1 s per call) on
    reference games and compares what happens with the label; it prints a table per kind and exits 1
    when a label does not hold.

Usage:
    python3 tools/make_sft_data.py --out model/default/sft.jsonl --n 3000 --seed 0 [--check]
    python3 tools/make_sft_data.py --out model/default/sft.jsonl --n 3000 --seed 0 --check-only
Only the Python standard library is used.
"""

import argparse
import ast
import builtins
import concurrent.futures
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time

PROMPT = (
    "Create a new short 2048 strategy using only native Python code.\n"
    "You are given a list of list of numbers for the current board state.\n"
    'Output one action for "W", "A", "S", "D" on what is the optimal next step.\n'
    "Output your new short function in backticks using the format below:\n"
    "```python\n"
    "def strategy(board):\n"
    '    return "W" # Example\n'
    "```\n"
    "All helper functions should be inside def strategy. Only output the short function `strategy`."
)

FENCE_OPEN = "```python\n"
FENCE_CLOSE = "\n```"
DEF_LINE = "def strategy(board):"
MAX_COMPLETION_CHARS = 700           # hard cap on a completion, fences included (characters)
SIZE_BUDGET_BYTES = 2 * 1000 * 1000  # the brief's "whole file under 2 MB"

MOVES = "WASD"
OPPOSITE = {"W": "S", "S": "W", "A": "D", "D": "A"}
MOVE_NAME = {"W": "up", "A": "left", "S": "down", "D": "right"}
CORNER_NAME = {("W", "A"): "top-left", ("W", "D"): "top-right",
               ("S", "A"): "bottom-left", ("S", "D"): "bottom-right"}

# Top-level modules a completion may not import: anything outside the standard library counts.
STDLIB_MODULES = frozenset(sys.stdlib_module_names)


# ----------------------------------------------------------------------------------------------------
# Reference 2048 game (verifier only)
# ----------------------------------------------------------------------------------------------------

def slide_line(line):
    """Slides one line of tile values toward index 0, merging equal neighbours once each.

    line: list of n ints (0 = empty). Returns (new_line, score): new_line has n ints, score is the sum
    of the merged tiles' new values ([2, 2, 2, 2] -> ([4, 4, 0, 0], 8); [4, 4, 8, 0] -> ([8, 8, 0, 0], 8)).
    Same rule as game2048/game.h's game_slide_line."""
    tiles = [v for v in line if v]
    out = []
    score = 0
    i = 0
    while i < len(tiles):
        if i + 1 < len(tiles) and tiles[i] == tiles[i + 1]:
            out.append(2 * tiles[i])
            score += 2 * tiles[i]
            i += 2
        else:
            out.append(tiles[i])
            i += 1
    return out + [0] * (len(line) - len(out)), score


def move_lines(n, move):
    """The n lines of an n x n board for a move, each as (row, col) cells listed from the side the
    tiles slide toward: 'W' columns top->bottom, 'S' columns bottom->top, 'A' rows left->right,
    'D' rows right->left."""
    idx = range(n)
    if move == "A":
        return [[(r, c) for c in idx] for r in idx]
    if move == "D":
        return [[(r, c) for c in reversed(idx)] for r in idx]
    if move == "W":
        return [[(r, c) for r in idx] for c in idx]
    if move == "S":
        return [[(r, c) for r in reversed(idx)] for c in idx]
    raise ValueError(f"move must be one of W, A, S, D, got {move!r}")


def apply_move(board, move):
    """Plays a move on a copy of board (n x n list of lists). Returns (new_board, score, changed)."""
    n = len(board)
    new = [row[:] for row in board]
    total = 0
    for cells in move_lines(n, move):
        line, score = slide_line([board[r][c] for r, c in cells])
        total += score
        for (r, c), v in zip(cells, line):
            new[r][c] = v
    return new, total, new != board


def can_move(board):
    """True when some move changes the board."""
    return any(apply_move(board, m)[2] for m in MOVES)


def spawn_tile(board, rng, p_four=0.1):
    """Puts a 2 (probability 1 - p_four) or a 4 on a uniformly chosen empty cell of board, in place.
    rng: random.Random. The board must have an empty cell."""
    empty = [(r, c) for r, row in enumerate(board) for c, v in enumerate(row) if v == 0]
    r, c = rng.choice(empty)
    board[r][c] = 4 if rng.random() < p_four else 2


def new_board(n, rng):
    """An n x n board with two spawned tiles."""
    board = [[0] * n for _ in range(n)]
    spawn_tile(board, rng)
    spawn_tile(board, rng)
    return board


def self_test_game():
    """Checks the reference game on hand-worked cases; raises AssertionError on a mismatch."""
    assert slide_line([2, 2, 2, 2]) == ([4, 4, 0, 0], 8)
    assert slide_line([4, 4, 8, 0]) == ([8, 8, 0, 0], 8)
    assert slide_line([2, 0, 2, 4]) == ([4, 4, 0, 0], 4)
    assert slide_line([0, 0, 0, 2]) == ([2, 0, 0, 0], 0)
    assert slide_line([2, 4, 8, 16]) == ([2, 4, 8, 16], 0)
    b = [[2, 0, 0, 2], [0, 0, 0, 0], [4, 0, 0, 0], [4, 0, 0, 0]]
    assert apply_move(b, "A") == ([[4, 0, 0, 0], [0, 0, 0, 0], [4, 0, 0, 0], [4, 0, 0, 0]], 4, True)
    assert apply_move(b, "D")[0] == [[0, 0, 0, 4], [0, 0, 0, 0], [0, 0, 0, 4], [0, 0, 0, 4]]
    assert apply_move(b, "W") == ([[2, 0, 0, 2], [8, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], 8, True)
    assert apply_move(b, "S")[0] == [[0, 0, 0, 0], [0, 0, 0, 0], [2, 0, 0, 0], [8, 0, 0, 2]]
    full = [[2, 4], [4, 2]]
    assert not can_move(full) and can_move([[2, 2], [4, 8]])
    rng = random.Random(7)
    board = new_board(4, rng)
    assert sum(v != 0 for row in board for v in row) == 2


# ----------------------------------------------------------------------------------------------------
# Source builder and building blocks
# ----------------------------------------------------------------------------------------------------

class Prog:
    """Collects the body lines of one `def strategy(board):` and hands out identifiers.

    name(pool) returns a random identifier from pool that the program does not use yet (so two roles
    never share a name; a terse program, drawn with probability terse_chance, prefers short ones);
    lit(text) quotes text with the program's quote character; add(level, text) appends a line
    indented by `level` four-space steps (1 = directly inside strategy)."""

    def __init__(self, rng, terse_chance=0.3):
        self.rng = rng
        self.used = {"board", "strategy"}
        self.lines = []
        self.q = '"' if rng.random() < 0.7 else "'"
        self.terse = rng.random() < terse_chance

    def name(self, pool, terse_ok=True):
        free = [p for p in pool if p not in self.used]
        if not free:
            raise AssertionError(f"name pool exhausted: {pool}")
        if self.terse and terse_ok:  # a terse program prefers one- and two-letter variable names
            free = [p for p in free if len(p) <= 2] or free
        pick = self.rng.choice(free)
        self.used.add(pick)
        return pick

    def lit(self, text):
        return f"{self.q}{text}{self.q}"

    def add(self, level, text):
        self.lines.append("    " * level + text)

    def comment(self, level, options, chance):
        """Adds one comment line chosen from options with probability `chance`."""
        if options and self.rng.random() < chance:
            self.add(level, "# " + self.rng.choice(options))

    def source(self):
        return DEF_LINE + "\n" + "\n".join(self.lines)


# Identifier pools (a name listed twice is drawn twice as often: short names keep programs short).
ROW_NAMES = ["r", "r", "row", "line"]
BOARD_NAMES = ["b", "b", "g", "grid", "cur"]
NEW_NAMES = ["n", "nb", "new", "after", "nxt"]
MOVE_VARS = ["m", "m", "d", "k", "mv", "move"]
TILE_NAMES = ["v", "v", "x", "tile", "t"]
LIST_NAMES = ["t", "t", "q", "vals", "nums", "tiles"]
OUT_NAMES = ["o", "o", "out", "res", "acc"]
PAIR_NAMES = [("a", "c"), ("a", "c"), ("x", "y"), ("p", "q"), ("u", "w"), ("s", "e")]
SLIDE_NAMES = ["slide", "slide", "merge", "push", "squash", "shift", "collapse", "fold", "go"]
PRED_NAMES = ["can", "can", "movable", "changes", "can_move", "alive", "legal", "ok"]
ORIENT_NAMES = ["turn", "orient", "rotate", "align", "view", "aim"]
VIEWS_NAMES = ["views", "boards", "sides", "frames"]
TRANS_NAMES = ["t", "tr", "cols", "flip"]
ORDER_NAMES = ["order", "prefs", "moves", "dirs", "plan"]
BEST_NAMES = [("best", "pick"), ("best", "pick"), ("top", "choice"), ("hi", "ans"),
              ("best", "move"), ("most", "chosen")]
VALUE_NAMES = ["e", "e", "v", "empty", "free", "gaps", "zeros", "val", "h", "score"]
INDEX_NAMES = ["i", "i", "j", "idx", "pos"]


def corner_order(rng):
    """A preference order for a corner: its two wall moves first (either order), then the two moves
    away from it, usually the one along the kept row/column first. Returns (order, corner name)."""
    row_edge = rng.choice("WS")
    col_edge = rng.choice("AD")
    first = [row_edge, col_edge] if rng.random() < 0.5 else [col_edge, row_edge]
    if rng.random() < 0.8:
        rest = [OPPOSITE[first[1]], OPPOSITE[first[0]]]
    else:
        rest = [OPPOSITE[first[0]], OPPOSITE[first[1]]]
    return first + rest, CORNER_NAME[(row_edge, col_edge)]


def order_literal(p, order):
    """Python literal for a move order: "SADW", ["S", "A", "D", "W"] or ("S", "A", "D", "W")."""
    style = p.rng.random()
    if style < 0.55:
        return p.lit("".join(order))
    items = ", ".join(p.lit(m) for m in order)
    return f"[{items}]" if style < 0.85 else f"({items})"


def order_expr(p, order, level):
    """Either adds `ORDER = literal` and returns the variable name, or returns the literal itself."""
    lit = order_literal(p, order)
    if p.rng.random() < 0.45:
        var = p.name(ORDER_NAMES)
        p.add(level, f"{var} = {lit}")
        return var
    return lit


def membership(p, move_var, pair):
    """`m in "WS"` or `m in ("W", "S")`."""
    if p.rng.random() < 0.75:
        return f"{move_var} in {p.lit(pair)}"
    return f"{move_var} in ({p.lit(pair[0])}, {p.lit(pair[1])})"


def reverse_expr(p, row):
    return f"{row}[::-1]" if p.rng.random() < 0.85 else f"list(reversed({row}))"


class Orientation:
    """Emits the loop over candidate moves with, for each move M, a view of the board in which M slides
    every row toward index 0 (transpose for W/S, then reverse rows for S/D: 'S' reads the columns
    bottom-up).

    Styles: 'inline' computes the view inside the loop; 'helper' defines a function before the loop;
    'views' builds a dict of the four views before the loop; 'zip' zips the move order with a tuple of
    the four views. need_lists: the rows must be lists (the caller compares slid rows with them);
    otherwise zip's tuples are fine."""

    def __init__(self, p, row, need_lists, styles=("inline", "zip", "zip", "helper", "views"),
                 oneline_chance=0.5):
        self.p = p
        self.row = row
        self.need_lists = need_lists
        self.style = p.rng.choice(styles)
        self.oneline = p.rng.random() < oneline_chance
        self.helper = None
        self.trans = None
        self.views = None

    def _transpose(self, src):
        if self.need_lists or self.p.rng.random() < 0.5:
            return f"[list({self.row}) for {self.row} in zip(*{src})]"
        return f"list(zip(*{src}))"

    def _rev(self, src):
        return f"[{reverse_expr(self.p, self.row)} for {self.row} in {src}]"

    def _if(self, level, cond, target, expr):
        if self.oneline:
            self.p.add(level, f"if {cond}: {target} = {expr}")
        else:
            self.p.add(level, f"if {cond}:")
            self.p.add(level + 1, f"{target} = {expr}")

    def before_loop(self, level):
        """Adds what the style needs before the loop (helper def, transposed board, views dict)."""
        p = self.p
        if self.style == "helper":
            self.helper = p.name(ORIENT_NAMES, terse_ok=False)
            bv = p.name(BOARD_NAMES)
            mv = p.name(MOVE_VARS)
            p.add(level, f"def {self.helper}({bv}, {mv}):")
            self._if(level + 1, membership(p, mv, "WS"), bv, self._transpose(bv))
            self._if(level + 1, membership(p, mv, "SD"), bv, self._rev(bv))
            p.add(level + 1, f"return {bv}")
        elif self.style in ("views", "zip"):
            self.trans = p.name(TRANS_NAMES)
            p.add(level, f"{self.trans} = {self._transpose('board')}")
            if self.style == "views":
                self.views = p.name(VIEWS_NAMES)
                items = ", ".join(f"{p.lit(k)}: {self._view_of(k)}" for k in
                                  (MOVES if p.rng.random() < 0.5 else "AWDS"))
                p.add(level, f"{self.views} = {{{items}}}")

    def _view_of(self, move):
        return {"W": self.trans, "A": "board", "S": self._rev(self.trans), "D": self._rev("board")}[move]

    def header(self, level, order, move_var, board_var, index_var=None):
        """Adds the loop header (and, for 'inline', the view lines) visiting the moves of `order`.
        Returns the expression for the current view: board_var, or a call / dict lookup."""
        p = self.p
        if self.style == "zip":
            seq = order_literal(p, order)
            views = ", ".join(self._view_of(m) for m in order)
            it = f"zip({seq}, ({views}))"
            if index_var:
                p.add(level, f"for {index_var}, ({move_var}, {board_var}) in enumerate({it}):")
            else:
                p.add(level, f"for {move_var}, {board_var} in {it}:")
            return board_var
        seq = order_expr(p, order, level)
        if index_var:
            p.add(level, f"for {index_var}, {move_var} in enumerate({seq}):")
        else:
            p.add(level, f"for {move_var} in {seq}:")
        if self.style == "helper":
            return f"{self.helper}(board, {move_var})"
        if self.style == "views":
            return f"{self.views}[{move_var}]"
        p.add(level + 1, f"{board_var} = board")
        self._if(level + 1, membership(p, move_var, "WS"), board_var, self._transpose(board_var))
        self._if(level + 1, membership(p, move_var, "SD"), board_var, self._rev(board_var))
        return board_var


SLIDE_STYLES_ALL = ("pop", "pop", "inplace", "inplace", "index", "flag")
SLIDE_STYLES_SHORT = ("pop", "inplace")


def emit_slide(p, level, row, with_score, styles=SLIDE_STYLES_ALL):
    """Adds `def SLIDE(row):` that slides a row toward index 0 merging each tile once; it returns the
    new row, or (new row, merge score) when with_score. styles: the code shapes to draw from ('pop',
    'inplace' are the short ones). Returns the helper's name."""
    name = p.name(SLIDE_NAMES, terse_ok=False)
    v = p.name(TILE_NAMES)
    t = p.name(LIST_NAMES)
    s = p.name(["s", "sc", "pts", "gain", "won"]) if with_score else None
    style = p.rng.choice(styles)
    o = t if style == "inplace" else p.name(OUT_NAMES)
    tail = f"{o} + [0] * (len({row}) - len({o}))"
    ret = f"return {tail}, {s}" if with_score else f"return {tail}"
    p.comment(level, ["slide a row to the front and merge pairs", "merge one row toward index 0",
                      "each tile merges at most once"], 0.2)
    p.add(level, f"def {name}({row}):")
    b = level + 1
    if style == "pop":
        p.add(b, f"{t} = [{v} for {v} in {row} if {v}]")
        p.add(b, f"{o}, {s} = [], 0" if with_score else f"{o} = []")
        p.add(b, f"while {t}:")
        p.add(b + 1, f"{v} = {t}.pop(0)")
        p.add(b + 1, f"if {t} and {t}[0] == {v}:")
        if p.rng.random() < 0.5:
            p.add(b + 2, f"{v} += {t}.pop(0)")
        else:
            p.add(b + 2, f"{t}.pop(0)")
            p.add(b + 2, f"{v} *= 2")
        if with_score:
            p.add(b + 2, f"{s} += {v}")
        p.add(b + 1, f"{o}.append({v})")
    elif style == "inplace":  # merge equal neighbours left to right, the right one becomes a gap
        i = p.name(INDEX_NAMES)
        p.add(b, f"{t} = [{v} for {v} in {row} if {v}]")
        if with_score:
            p.add(b, f"{s} = 0")
        p.add(b, f"for {i} in range(len({t}) - 1):")
        p.add(b + 1, f"if {t}[{i}] == {t}[{i} + 1]:")
        p.add(b + 2, f"{t}[{i}], {t}[{i} + 1] = 2 * {t}[{i}], 0")
        if with_score:
            p.add(b + 2, f"{s} += {t}[{i}]")
        p.add(b, f"{t} = [{v} for {v} in {t} if {v}]")
    elif style == "index":
        i = p.name(INDEX_NAMES)
        p.add(b, f"{t} = [{v} for {v} in {row} if {v}]")
        p.add(b, f"{o}, {i}" + (f", {s} = [], 0, 0" if with_score else " = [], 0"))
        p.add(b, f"while {i} < len({t}):")
        p.add(b + 1, f"if {i} + 1 < len({t}) and {t}[{i}] == {t}[{i} + 1]:")
        p.add(b + 2, f"{o}.append(2 * {t}[{i}])")
        if with_score:
            p.add(b + 2, f"{s} += 2 * {t}[{i}]")
        p.add(b + 2, f"{i} += 2")
        p.add(b + 1, "else:")
        p.add(b + 2, f"{o}.append({t}[{i}])")
        p.add(b + 2, f"{i} += 1")
    else:  # flag: the last output tile may still take one merge while `free` is set
        f = p.name(["free", "open_", "can_join", "fresh", "single"])
        p.add(b, f"{o}, {f}" + (f", {s} = [], False, 0" if with_score else " = [], False"))
        p.add(b, f"for {v} in {row}:")
        p.add(b + 1, f"if not {v}:")
        p.add(b + 2, "continue")
        p.add(b + 1, f"if {f} and {o}[-1] == {v}:")
        p.add(b + 2, f"{o}[-1] *= 2")
        if with_score:
            p.add(b + 2, f"{s} += {o}[-1]")
        p.add(b + 2, f"{f} = False")
        p.add(b + 1, "else:")
        p.add(b + 2, f"{o}.append({v})")
        p.add(b + 2, f"{f} = True")
    p.add(b, ret)
    return name


def emit_predicate(p, level, row):
    """Adds `def PRED(b):` that is true when sliding every row of b toward index 0 changes something
    (a tile with an empty cell before it, or two equal neighbours). Returns the helper's name."""
    name = p.name(PRED_NAMES, terse_ok=False)
    bv = p.name(BOARD_NAMES)
    a, c = p.rng.choice([pr for pr in PAIR_NAMES if pr[0] not in p.used and pr[1] not in p.used])
    p.used.update((a, c))
    test = p.rng.choice([f"{a} == 0 < {c} or {a} == {c} > 0",
                         f"({a} == 0 and {c} > 0) or ({a} > 0 and {a} == {c})",
                         f"{c} and {a} in (0, {c})",
                         f"{c} != 0 and ({a} == 0 or {a} == {c})"])
    p.comment(level, ["can the row slide: a gap before a tile, or a pair",
                      "true when the move changes the board"], 0.25)
    p.add(level, f"def {name}({bv}):")
    if p.rng.random() < 0.6:
        p.add(level + 1, f"return any({test} for {row} in {bv} for {a}, {c} in zip({row}, {row}[1:]))")
    else:
        i = p.name(INDEX_NAMES)
        p.add(level + 1, f"for {row} in {bv}:")
        p.add(level + 2, f"for {i} in range(len({row}) - 1):")
        p.add(level + 3, f"{a}, {c} = {row}[{i}], {row}[{i} + 1]")
        p.add(level + 3, f"if {test}:")
        p.add(level + 4, "return True")
        p.add(level + 1, "return False")
    return name


def empties_expr(p, board, row):
    """An expression counting the zeros of board (rows named `row` inside the comprehension)."""
    return p.rng.choice([f"sum({row}.count(0) for {row} in {board})",
                         f"sum(v == 0 for {row} in {board} for v in {row})",
                         f"[v for {row} in {board} for v in {row}].count(0)"])


def best_init(p, first_move, negative):
    """Adds the running-best variables, the best value starting below any value a move can get
    (negative: values can be below zero, so -1 will not do). Returns (best, pick)."""
    best, pick = p.rng.choice([bp for bp in BEST_NAMES if bp[0] not in p.used and bp[1] not in p.used])
    p.used.update((best, pick))
    lows = ["-10 ** 9", "-1e9", f"float({p.lit('-inf')})"] + ([] if negative else ["-1", "-1", "-99"])
    low = p.rng.choice(lows)
    if p.rng.random() < 0.6:
        p.add(1, f"{best}, {pick} = {low}, {p.lit(first_move)}")
    else:
        p.add(1, f"{best} = {low}")
        p.add(1, f"{pick} = {p.lit(first_move)}")
    return best, pick


# ----------------------------------------------------------------------------------------------------
# Good kinds
# ----------------------------------------------------------------------------------------------------

def gen_corner(rng):
    """Corner keeping: the first move of a fixed corner preference order that changes the board,
    tested with a "can this move change anything" predicate or by sliding the rows and comparing."""
    p = Prog(rng)
    order, corner = corner_order(rng)
    row = p.name(ROW_NAMES)
    p.comment(1, [f"keep the biggest tile in the {corner} corner", f"{corner} corner strategy",
                  f"corner strategy: {MOVE_NAME[order[0]]} first, then {MOVE_NAME[order[1]]}",
                  f"prefer {', '.join(MOVE_NAME[m] for m in order)}"], 0.45)
    use_pred = rng.random() < 0.5
    if use_pred:
        helper = emit_predicate(p, 1, row)
    else:
        helper = emit_slide(p, 1, row, with_score=False)
    orient = Orientation(p, row, need_lists=not use_pred)
    orient.before_loop(1)
    m = p.name(MOVE_VARS)
    fallback = rng.choice([p.lit(order[0]), p.lit(order[-1])])
    if use_pred and orient.style in ("helper", "views") and rng.random() < 0.4:
        view = (f"{orient.helper}(board, {m})" if orient.style == "helper" else f"{orient.views}[{m}]")
        seq = order_expr(p, order, 1)
        p.add(1, f"return next(({m} for {m} in {seq} if {helper}({view})), {fallback})")
        return p.source()
    p.comment(1, ["first move in the list that changes the board", "skip moves that change nothing",
                  "try the moves in order of preference"], 0.3)
    bv = p.name(BOARD_NAMES)
    view = orient.header(1, order, m, bv)
    if use_pred:
        p.add(2, f"if {helper}({view}):")
    else:
        if view != bv:
            p.add(2, f"{bv} = {view}")
        p.add(2, f"if [{helper}({row}) for {row} in {bv}] != {bv}:")
    p.add(3, f"return {m}")
    p.add(1, f"return {fallback}")
    return p.source()


def _greedy_loop(p, order, row, orient, value_lines, slide, with_score, negative=False):
    """Shared loop of the lookahead kinds: slide every row of each move's view with `slide` (which
    returns (row, score) when with_score) and keep the first move, in `order`, with the highest value
    among the moves that change the board. value_lines(level, new_board_var, score_var) adds the lines
    computing the value and returns its expression; negative: the value can be below zero."""
    rng = p.rng
    m = p.name(MOVE_VARS)
    bv = p.name(BOARD_NAMES)
    nb = p.name(NEW_NAMES)
    shape = rng.choice(["and", "and", "nested", "continue", "list"])
    idx = None
    if shape == "list":
        opts = p.name(["opts", "cands", "scored", "ranked", "found"])
        idx = p.name(INDEX_NAMES)
        p.add(1, f"{opts} = []")
    else:
        best, pick = best_init(p, order[0], negative)
    view = orient.header(1, order, m, bv, idx)
    if view != bv:
        p.add(2, f"{bv} = {view}")
    sc = None
    if with_score:
        res = p.name(["res", "rows", "pairs", "slid"])
        sc = p.name(["gain", "pts", "got", "sc"])
        p.add(2, f"{res} = [{slide}({row}) for {row} in {bv}]")
        p.add(2, f"{nb} = [x[0] for x in {res}]")
        p.add(2, f"{sc} = sum(x[1] for x in {res})")
    else:
        p.add(2, f"{nb} = [{slide}({row}) for {row} in {bv}]")
    if shape == "and":
        val = value_lines(2, nb, sc)
        p.add(2, f"if {nb} != {bv} and {val} > {best}:")
        p.add(3, f"{best}, {pick} = {val}, {m}")
    elif shape == "continue":
        p.add(2, f"if {nb} == {bv}:")
        p.add(3, "continue")
        val = value_lines(2, nb, sc)
        p.add(2, f"if {val} > {best}:")
        p.add(3, f"{best}, {pick} = {val}, {m}")
    else:
        p.add(2, f"if {nb} != {bv}:")
        val = value_lines(3, nb, sc)
        if shape == "list":
            p.add(3, f"{opts}.append(({val}, -{idx}, {m}))")
        else:
            p.add(3, f"if {val} > {best}:")
            p.add(4, f"{best}, {pick} = {val}, {m}")
    if shape == "list":
        p.add(1, f"return max({opts})[2] if {opts} else {p.lit(order[0])}")
    else:
        p.add(1, f"return {pick}")
    return p.source()


SHORT_VIEWS = ("zip", "zip", "views", "inline")  # orientation styles that keep lookahead programs short


def _lookahead_order(rng):
    """Tie-break order for the lookahead kinds: a corner order most of the time, else any order."""
    if rng.random() < 0.8:
        return corner_order(rng)[0]
    return rng.sample(MOVES, 4)


def gen_greedy_empty(rng):
    """One-step lookahead: the move that leaves the most empty cells (ties: earlier in the order)."""
    p = Prog(rng, terse_chance=0.5)
    order = _lookahead_order(rng)
    row = p.name(ROW_NAMES)
    p.comment(1, ["greedy: keep as many empty cells as possible",
                  "pick the move that leaves the most empty cells", "one-step lookahead on empty cells",
                  "more empty cells means more room"], 0.3)
    slide = emit_slide(p, 1, row, with_score=False, styles=SLIDE_STYLES_SHORT)
    orient = Orientation(p, row, need_lists=True, styles=SHORT_VIEWS, oneline_chance=0.8)
    orient.before_loop(1)

    def value(level, nb, sc):
        e = p.name(VALUE_NAMES)
        p.add(level, f"{e} = {empties_expr(p, nb, row)}")
        return e

    return _greedy_loop(p, order, row, orient, value, slide, False)


def gen_greedy_merge(rng):
    """One-step lookahead: the move with the largest merge score (ties: earlier in the order)."""
    p = Prog(rng, terse_chance=0.7)
    order = _lookahead_order(rng)
    row = p.name(ROW_NAMES)
    p.comment(1, ["greedy: take the move with the biggest merge score",
                  "score a move by the tiles it merges", "one-step lookahead on merge points",
                  "merge as much as possible each turn"], 0.3)
    slide = emit_slide(p, 1, row, with_score=True, styles=SLIDE_STYLES_SHORT)
    orient = Orientation(p, row, need_lists=True, styles=SHORT_VIEWS, oneline_chance=0.8)
    orient.before_loop(1)

    def value(level, nb, sc):
        if rng.random() < 0.2:  # small variation: empty cells break ties between equal scores
            g = p.name(VALUE_NAMES)
            p.add(level, f"{g} = {sc} * {rng.choice([4, 8, 16, 100])} + {empties_expr(p, nb, row)}")
            return g
        return sc

    return _greedy_loop(p, order, row, orient, value, slide, True)


def gen_lookahead_bonus(rng):
    """One-step lookahead on empty cells plus a bonus when the biggest tile sits in a corner and/or a
    penalty for uneven neighbours (smoothness, a cheap monotonicity measure). Corners and neighbour
    pairs are the same in every view of the board, so the oriented view can be scored directly."""
    p = Prog(rng, terse_chance=0.9)
    order = _lookahead_order(rng)
    row = p.name(ROW_NAMES)
    features = rng.choice([("smooth",)] * 4 + [("corner",)] * 2 + [("corner", "smooth")])
    desc = {"corner": "a corner bonus", "smooth": "a smoothness penalty"}
    p.comment(1, ["empty cells plus " + " and ".join(desc[f] for f in features),
                  "look one move ahead and score the board",
                  "lookahead with a bonus for a tidy board"], 0.3)
    slide = emit_slide(p, 1, row, with_score=False, styles=SLIDE_STYLES_SHORT)
    orient = Orientation(p, row, need_lists=True, styles=SHORT_VIEWS, oneline_chance=0.8)
    orient.before_loop(1)

    def value(level, nb, sc):
        v = p.name(VALUE_NAMES)
        empties = empties_expr(p, nb, row)
        corners = f"{nb}[0][0], {nb}[0][-1], {nb}[-1][0], {nb}[-1][-1]"
        bonus = rng.choice([1, 2, 2, 3, 4])
        a, c = p.rng.choice([pr for pr in PAIR_NAMES if pr[0] not in p.used and pr[1] not in p.used
                             and "x" not in pr])  # x names the transposed rows below
        lines = rng.choice([f"{nb} + [list(x) for x in zip(*{nb})]", f"{nb} + list(zip(*{nb}))"])
        scale = rng.choice(["32", "48", "64", "64", "100", "128", f"max(map(max, {nb}))"])
        rough = f"sum(abs({a} - {c}) for {row} in {lines} for {a}, {c} in zip({row}, {row}[1:])) / {scale}"
        if len(features) == 1 and rng.random() < 0.6:  # the whole value in one expression
            if features == ("smooth",):
                p.add(level, f"{v} = {empties} - {rough}")
            else:
                p.add(level, f"{v} = {empties} + {bonus} * (max(map(max, {nb})) in ({corners}))")
            return v
        p.add(level, f"{v} = {empties}")
        if "corner" in features:
            p.comment(level, ["bonus when the biggest tile sits in a corner", "max tile in a corner"], 0.3)
            p.add(level, f"if max({corners}) == max(map(max, {nb})):")
            p.add(level + 1, f"{v} += {bonus}")
        if "smooth" in features:
            p.comment(level, ["penalty for big steps between neighbours", "smoother rows and columns"], 0.3)
            p.add(level, f"{v} -= {rough}")
        return v

    return _greedy_loop(p, order, row, orient, value, slide, False, negative="smooth" in features)


# ----------------------------------------------------------------------------------------------------
# Poor kinds
# ----------------------------------------------------------------------------------------------------

def gen_constant(rng):
    """Always the same move; gets stuck as soon as that move changes nothing."""
    p = Prog(rng)
    mv = rng.choice(MOVES)
    p.comment(1, [f"always move {MOVE_NAME[mv]}", "keep it simple", f"just push everything {MOVE_NAME[mv]}",
                  f"{MOVE_NAME[mv]} is usually safe"], 0.45)
    shape = rng.randrange(6)
    if shape == 0:
        var = p.name(["move", "action", "step", "m", "d"])
        p.add(1, f"{var} = {p.lit(mv)}")
        p.add(1, f"return {var}")
    elif shape == 1:
        k = MOVES.index(mv)
        p.add(1, f"return {p.lit(MOVES)}[{k}]")
    elif shape == 2:
        n = p.name(["n", "size", "rows", "side"])
        p.add(1, f"{n} = len(board)")
        p.add(1, f"return {p.lit(mv)}")
    elif shape == 3:
        p.add(1, f"if board[0][0] > 0:")
        p.add(2, f"return {p.lit(mv)}")
        p.add(1, f"return {p.lit(mv)}")
    else:
        p.add(1, f"return {p.lit(mv)}")
    return p.source()


# Four-move cycles that mostly undo themselves (opposite moves adjacent): about as good as random play.
WEAK_CYCLES = ["WADS", "DSWA", "WSDA", "DAWS", "DASW", "SDAW", "WSAD", "WDAS", "ASWD", "ADSW", "DWSA",
               "SWAD", "SADW", "AWSD", "SWDA", "ADWS"]


def gen_cycle(rng):
    """A fixed cycle of moves, indexed by a call counter stored on the function, by the length of a
    history list on the function, or by something read off the board (tile count, tile sum)."""
    p = Prog(rng)
    seq = rng.choice(WEAK_CYCLES) if rng.random() < 0.85 else "".join(rng.sample(MOVES, rng.choice([2, 3])))
    p.comment(1, ["cycle through the moves", f"go {', '.join(MOVE_NAME[m] for m in seq)} and repeat",
                  "rotate the moves"], 0.45)
    shape = rng.randrange(5)
    size = str(len(seq))
    if rng.random() < 0.4:
        mv = p.name(["moves", "cycle", "seq", "order", "pattern"])
        p.add(1, f"{mv} = {order_literal(p, seq)}")
        if rng.random() < 0.5:
            size = f"len({mv})"
    else:
        mv = order_literal(p, seq)
    if shape == 0:
        attr = p.name(["n", "i", "t", "count", "turn", "step", "calls"])
        start = rng.choice(["0", "-1"])
        p.add(1, f"strategy.{attr} = getattr(strategy, {p.lit(attr)}, {start}) + 1")
        p.add(1, f"return {mv}[strategy.{attr} % {size}]")
    elif shape == 1:
        attr = p.name(["n", "i", "t", "count", "turn", "step", "calls"])
        p.add(1, f"if not hasattr(strategy, {p.lit(attr)}):")
        p.add(2, f"strategy.{attr} = 0")
        p.add(1, f"strategy.{attr} += 1")
        p.add(1, f"return {mv}[strategy.{attr} % {size}]")
    elif shape == 2:
        attr = p.name(["seen", "hist", "log", "past", "history"])
        p.add(1, f"if not hasattr(strategy, {p.lit(attr)}):")
        p.add(2, f"strategy.{attr} = []")
        p.add(1, f"strategy.{attr}.append(1)")
        p.add(1, f"return {mv}[len(strategy.{attr}) % {size}]")
    else:
        k = p.name(["k", "n", "tiles", "total", "count"])
        src = rng.choice([f"len([v for r in board for v in r if v])",
                          f"sum(v > 0 for r in board for v in r)",
                          f"sum(map(sum, board)) // 2",
                          f"sum(sum(r) for r in board) // 2"])
        p.add(1, f"{k} = {src}")
        p.add(1, f"return {mv}[{k} % {size}]")
    return p.source()


def gen_random(rng):
    """A random move (import random inside strategy)."""
    p = Prog(rng)
    p.comment(1, ["pick a random move", "random play", "no plan, just a random direction"], 0.45)
    shape = rng.randrange(8)
    moves_lit = order_literal(p, list(MOVES) if rng.random() < 0.6 else rng.sample(MOVES, 4))
    if shape == 0:
        p.add(1, "from random import choice")
        p.add(1, f"return choice({moves_lit})")
        return p.source()
    p.add(1, "import random")
    if shape == 1:
        p.add(1, f"return {p.lit(MOVES)}[random.randint(0, 3)]")
    elif shape == 2:
        p.add(1, f"return {p.lit(MOVES)}[random.randrange(4)]")
    elif shape == 3:
        w = ", ".join(str(rng.randint(1, 4)) for _ in MOVES)
        p.add(1, f"return random.choices({moves_lit}, weights=[{w}])[0]")
    elif shape == 4:
        var = p.name(["moves", "opts", "dirs"])
        p.add(1, f"{var} = list({p.lit(MOVES)})")
        p.add(1, f"random.shuffle({var})")
        p.add(1, f"return {var}[0]")
    else:
        p.add(1, f"return random.choice({moves_lit})")
    return p.source()


# ----------------------------------------------------------------------------------------------------
# Broken kinds
# ----------------------------------------------------------------------------------------------------

def corrupt_syntax(rng, src):
    """Breaks src with a missing colon, a bad indentation or an unclosed parenthesis, so that
    compile() raises SyntaxError. Returns the broken source, or None when src offers no such spot."""
    lines = src.split("\n")
    how = rng.choice(["colon", "indent", "paren"])
    if how == "colon":
        spots = [i for i, ln in enumerate(lines) if ln.rstrip().endswith(":")]
        if not spots:
            return None
        i = rng.choice(spots)
        lines[i] = lines[i].rstrip()[:-1]
    elif how == "indent":
        spots = [i for i, ln in enumerate(lines) if i > 0 and ln.startswith("    ")]
        if not spots:
            return None
        i = rng.choice(spots)
        body = lines[i].lstrip(" ")
        depth = len(lines[i]) - len(body)
        lines[i] = " " * max(0, depth + rng.choice([-2, -1, 1, 2, 4, -4])) + body
    else:
        spots = [i for i, ln in enumerate(lines) if ")" in ln]
        if not spots:
            return None
        i = rng.choice(spots)
        j = lines[i].rfind(")") if rng.random() < 0.7 else lines[i].find(")")
        lines[i] = lines[i][:j] + lines[i][j + 1:]
    out = "\n".join(lines)
    try:
        compile(out, "<strategy>", "exec")
    except SyntaxError:
        return out
    return None


def gen_syntax_error(rng):
    """A good or poor program with one syntax error."""
    while True:
        base = rng.choice([gen_corner, gen_corner, gen_greedy_empty, gen_greedy_merge, gen_lookahead_bonus,
                           gen_cycle, gen_cycle, gen_random, gen_constant])(rng)
        out = corrupt_syntax(rng, base)
        if out is not None:
            return out


def gen_banned_import(rng):
    """A strategy that imports numpy, torch or pandas."""
    p = Prog(rng)
    shape = rng.randrange(6)
    if shape == 5:  # a good program with an import an LLM often adds
        src = rng.choice([gen_corner, gen_greedy_empty, gen_lookahead_bonus])(rng)
        imp = rng.choice(["import numpy as np", "import numpy", "import pandas as pd", "import torch"])
        head, rest = src.split("\n", 1)
        return f"{head}\n    {imp}\n{rest}"
    b = p.name(["b", "g", "arr", "grid", "a"])
    mv = p.lit(MOVES)
    if shape == 0:
        p.add(1, "import numpy as np")
        p.add(1, f"{b} = np.array(board)")
        e = p.name(["empty", "free", "zeros"])
        p.comment(1, ["empty cells after each rotation", "score every direction"], 0.4)
        p.add(1, f"{e} = [np.sum(np.rot90({b}, k) == 0) for k in range(4)]")
        p.add(1, f"return {mv}[int(np.argmax({e}))]")
    elif shape == 1:
        p.add(1, rng.choice(["from numpy import array", "from numpy import array, argmax"]))
        p.add(1, f"{b} = array(board)")
        p.add(1, f"if {b}[-1].sum() >= {b}[0].sum():")
        p.add(2, f"return {p.lit(rng.choice('SA'))}")
        p.add(1, f"return {p.lit(rng.choice('WD'))}")
    elif shape == 2:
        p.add(1, "import torch")
        p.add(1, f"{b} = torch.tensor(board)")
        p.add(1, f"return {mv}[int({b}.argmax()) % 4]")
    elif shape == 3:
        p.add(1, "import pandas as pd")
        p.add(1, f"df = pd.DataFrame(board)")
        p.add(1, f"if df.iloc[-1].sum() >= df.iloc[0].sum():")
        p.add(2, f"return {p.lit(rng.choice('SD'))}")
        p.add(1, f"return {p.lit(rng.choice('WA'))}")
    else:
        p.add(1, "import numpy as np")
        p.add(1, f"{b} = np.array(board)")
        p.add(1, f"rows = {b}.sum(axis=1)")
        p.add(1, f"cols = {b}.sum(axis=0)")
        p.add(1, f"if rows.argmax() == len({b}) - 1:")
        p.add(2, f"return {p.lit('S')}")
        p.add(1, f"return {p.lit('A')} if cols.argmax() == 0 else {p.lit('D')}")
    return p.source()


def endless_corner(rng):
    """A corner search written as a while loop that forgets to advance its index: it loops forever as
    soon as the preferred move changes nothing (within a few moves of any game)."""
    p = Prog(rng)
    order, corner = corner_order(rng)
    row = p.name(ROW_NAMES)
    p.comment(1, [f"keep the biggest tile in the {corner} corner", "try the moves in order"], 0.4)
    use_pred = rng.random() < 0.5
    if use_pred:
        helper = emit_predicate(p, 1, row)
    else:
        helper = emit_slide(p, 1, row, with_score=False, styles=SLIDE_STYLES_SHORT)
    orient = Orientation(p, row, need_lists=not use_pred, styles=("helper", "views"))
    orient.before_loop(1)
    seq = p.name(ORDER_NAMES)
    i = p.name(INDEX_NAMES)
    m = p.name(MOVE_VARS)
    p.add(1, f"{seq} = {order_literal(p, order)}")
    p.add(1, f"{i} = 0")
    p.add(1, f"while {i} < {rng.choice(['4', f'len({seq})'])}:")
    p.add(2, f"{m} = {seq}[{i}]")
    view = f"{orient.helper}(board, {m})" if orient.style == "helper" else f"{orient.views}[{m}]"
    if use_pred:
        p.add(2, f"if {helper}({view}):")
    else:
        bv = p.name(BOARD_NAMES)
        p.add(2, f"{bv} = {view}")
        p.add(2, f"if [{helper}({row}) for {row} in {bv}] != {bv}:")
    p.add(3, f"return {m}")
    p.add(1, f"return {seq}[0]")
    return p.source()


def gen_endless_loop(rng):
    """A strategy whose loop never exits: 30% are corner searches that forget to advance the index
    (endless_corner: stuck once the preferred move changes nothing), the rest loop on every board."""
    if rng.random() < 0.3:
        return endless_corner(rng)
    p = Prog(rng)
    order = corner_order(rng)[0]
    lit = order_literal(p, order)
    p.comment(1, ["think until a good move is found", "search for the best move",
                  "look for a move"], 0.4)
    shape = rng.randrange(8)
    if shape == 0:
        p.add(1, "while True:")
        p.add(2, "pass")
        p.add(1, f"return {p.lit(order[0])}")
    elif shape == 1:  # forgot to advance the index
        i = p.name(INDEX_NAMES)
        tot = p.name(["total", "acc", "s", "weight"])
        p.add(1, f"{i} = 0")
        p.add(1, f"{tot} = 0")
        p.add(1, f"while {i} < len(board):")
        p.add(2, f"{tot} += sum(board[{i}])")
        p.add(1, f"return {p.lit(MOVES)}[{tot} % 4]")
    elif shape == 2:  # a counter kept modulo 4 can never reach 4
        k = p.name(["k", "step", "n", "idx"])
        p.add(1, f"{k} = 0")
        p.add(1, "while True:")
        p.add(2, f"{k} = ({k} + 1) % 4")
        p.add(2, f"if {k} == 4:")
        p.add(3, "break")
        p.add(1, f"return {lit}[{k}]")
    elif shape == 3:
        n = p.name(["n", "size", "count"])
        p.add(1, f"while len(board) > 0:")
        p.add(2, f"{n} = len(board)")
        p.add(1, f"return {p.lit(order[0])}")
    elif shape == 4:  # an even number never equals an odd target
        x = p.name(["x", "n", "t", "step"])
        p.add(1, f"{x} = 0")
        p.add(1, f"while {x} != {rng.choice([7, 9, 11, 15])}:")
        p.add(2, f"{x} += 2")
        p.add(1, f"return {lit}[{x} % 4]")
    elif shape == 5:  # the flag that ends the loop is never set
        done = p.name(["done", "found", "ok", "stop"])
        mv = p.name(["move", "m", "pick"])
        p.add(1, f"{done} = False")
        p.add(1, f"{mv} = {p.lit(order[0])}")
        p.add(1, f"while not {done}:")
        p.add(2, f"for {p.name(MOVE_VARS)} in {lit}:")
        p.add(3, "continue")
        p.add(1, f"return {mv}")
    elif shape == 6:
        n = p.name(["n", "k", "c"])
        p.add(1, f"{n} = 1")
        p.add(1, f"while {n} > 0:")
        p.add(2, f"{n} += 1")
        p.add(1, f"return {lit}[{n} % 4]")
    else:
        p.add(1, "while True:")
        p.add(2, "continue")
        p.add(1, f"return {p.lit(order[0])}")
    return p.source()


def _good_program(rng):
    """Source of a random good program (any good kind)."""
    return rng.choice([gen_corner, gen_greedy_empty, gen_greedy_merge, gen_lookahead_bonus])(rng)


def strategy_level_lines(lines):
    """Indices (into lines, the source split on newlines; line 0 is the def line) of the statements
    that belong to strategy itself rather than to a helper def nested inside it."""
    out = []
    nested = None  # indentation of the helper def whose body we are in, or None
    for i, ln in enumerate(lines[1:], 1):
        body = ln.lstrip(" ")
        indent = len(ln) - len(body)
        if not body or body.startswith("#"):
            continue
        if nested is not None and indent > nested:
            continue
        nested = indent if body.startswith("def ") else None
        if nested is None:
            out.append(i)
    return out


def quote_of(src):
    """The quote character a generated program uses for its strings."""
    return "'" if src.count("'") > src.count('"') else '"'


def invalid_from_good(rng):
    """A good program whose every return of strategy wraps the move into something that is not a
    move (its index, a one-element list, a number from a dict, its character code)."""
    src = _good_program(rng)
    q = quote_of(src)
    wrap = rng.choice([lambda e: f"{q}WASD{q}.index({e})", lambda e: f"[{e}]",
                       lambda e: f"{{{q}W{q}: 0, {q}A{q}: 1, {q}S{q}: 2, {q}D{q}: 3}}[{e}]",
                       lambda e: f"ord({e})"])
    lines = src.split("\n")
    for i in strategy_level_lines(lines):
        body = lines[i].lstrip(" ")
        if body.startswith("return "):
            lines[i] = lines[i][:len(lines[i]) - len(body)] + "return " + wrap(body[len("return "):])
    return "\n".join(lines)


def exception_from_good(rng):
    """A good program that raises on its first call: a helper called under a misspelt name
    (NameError), or a merge loop that runs one index too far (IndexError). Returns None when the
    drawn program offers neither."""
    src = _good_program(rng)
    lines = src.split("\n")
    if rng.random() < 0.5:  # off by one in the in-place merge loop: t[i + 1] past the end
        for i in range(len(lines) - 1):
            m = re.fullmatch(r"( *)for (\w+) in range\(len\((\w+)\) - 1\):", lines[i])
            if m and lines[i + 1].strip() == f"if {m[3]}[{m[2]}] == {m[3]}[{m[2]} + 1]:":
                lines[i] = f"{m[1]}for {m[2]} in range(len({m[3]})):"
                return "\n".join(lines)
    helpers = re.findall(r"^    def (\w+)\(", src, flags=re.M)
    top = strategy_level_lines(lines)
    called = [h for h in helpers if any(re.search(rf"\b{h}\(", lines[i]) for i in top)]
    if not called:
        return None
    name = rng.choice(called)
    typo = rng.choice([name + "s", name + "_row", name + "2", "do_" + name, name.capitalize()])
    if re.search(rf"\b{typo}\b", src) or hasattr(builtins, typo):
        return None
    for i in top:
        lines[i] = re.sub(rf"\b{name}\(", typo + "(", lines[i])
    return "\n".join(lines)


INVALID_STRINGS = ["X", "up", "left", "right", "UP", "Up", "LEFT", "Right", "Q", "E", "N", "U", "L", "R",
                   "", "move", "north", "0", "1"]


def gen_invalid_return(rng):
    """A strategy whose return value is not one of "W", "A", "S", "D" on the first call: 40% are good
    programs with a wrapped return (invalid_from_good), the rest short ones."""
    if rng.random() < 0.4:
        return invalid_from_good(rng)
    p = Prog(rng)
    shape = rng.randrange(7)
    if shape == 0:
        p.comment(1, ["move up", "go left", "pick a direction"], 0.4)
        p.add(1, f"return {p.lit(rng.choice(INVALID_STRINGS))}")
    elif shape == 1:  # None: forgot the return, printed it, or returned nothing
        mv = p.name(["move", "m", "best"])
        p.add(1, f"{mv} = {p.lit(rng.choice('SA'))} if board[-1][0] else {p.lit(rng.choice('WD'))}")
        p.add(1, rng.choice([f"print({mv})", "return", "return None", f"{mv}.upper()"]))
    elif shape == 2:  # an index instead of the letter
        order, _ = corner_order(rng)
        row = p.name(ROW_NAMES)
        helper = emit_predicate(p, 1, row)
        orient = Orientation(p, row, need_lists=False)
        orient.before_loop(1)
        i = p.name(INDEX_NAMES)
        m = p.name(MOVE_VARS)
        view = orient.header(1, order, m, p.name(BOARD_NAMES), i)
        p.add(2, f"if {helper}({view}):")
        p.add(3, f"return {i}")
        p.add(1, "return 0")
    elif shape == 3:
        p.add(1, f"return {rng.choice(['0', '1', '-1', '3', 'None', 'True', '2.0'])}")
    elif shape == 4:
        name = p.name(["names", "words", "lookup"])
        words = rng.choice([("up", "left", "right"), ("UP", "LEFT", "RIGHT"), ("0", "1", "3")])
        p.add(1, f"{name} = {{{p.lit('W')}: {p.lit(words[0])}, {p.lit('A')}: {p.lit(words[1])}, "
                 f"{p.lit('D')}: {p.lit(words[2])}}}")
        p.add(1, f"return {name}[{p.lit(rng.choice('WAD'))}]")
    elif shape == 5:
        p.add(1, rng.choice([f"return [{p.lit('W')}]", f"return {p.lit('W')}, {p.lit('A')}",
                             f"return {{{p.lit('S')}}}", f"return ord({p.lit('W')})"]))
    else:
        mv = p.name(["moves", "opts", "dirs"])
        p.add(1, f"{mv} = {order_literal(p, list(MOVES))}")
        p.add(1, f"return {mv}.index({p.lit(rng.choice(MOVES))})")
    return p.source()


def gen_exception(rng):
    """A strategy that raises on the first call: IndexError, NameError, TypeError or AttributeError.
    40% are good programs with one bug (exception_from_good), the rest short ones."""
    if rng.random() < 0.4:
        while True:
            src = exception_from_good(rng)
            if src is not None:
                return src
    p = Prog(rng)
    shape = rng.randrange(9)
    mv = p.lit(MOVES)
    if shape == 0:
        p.add(1, f"top = board[len(board)][0]")
        p.add(1, f"return {p.lit('S')} if top else {p.lit('A')}")
    elif shape == 1:
        s = p.name(["s", "total", "acc"])
        i = p.name(INDEX_NAMES)
        p.add(1, f"{s} = 0")
        p.add(1, f"for {i} in range(len(board) + 1):")
        p.add(2, f"{s} += sum(board[{i}])")
        p.add(1, f"return {mv}[{s} % 4]")
    elif shape == 2:
        same = p.name(["same", "pairs", "hits"])
        j = p.name(INDEX_NAMES)
        p.add(1, f"{same} = 0")
        p.add(1, f"for {j} in range(len(board)):")
        p.add(2, f"{same} += board[0][{j}] == board[0][{j} + 1]")
        p.add(1, f"return {p.lit('A')} if {same} else {p.lit('S')}")
    elif shape == 3:
        p.add(1, f"return {mv}[len(board) * 2]")
    elif shape == 4:  # helper never defined
        order, _ = corner_order(rng)
        m = p.name(MOVE_VARS)
        helper = p.name(PRED_NAMES + ["simulate", "try_move"])
        p.add(1, f"for {m} in {order_literal(p, order)}:")
        p.add(2, f"if {helper}(board, {m}):")
        p.add(3, f"return {m}")
        p.add(1, f"return {p.lit(order[0])}")
    elif shape == 5:  # typo in a variable name
        best = p.name(["best", "move", "pick"])
        p.add(1, f"{best} = {p.lit(rng.choice(MOVES))}")
        p.add(1, f"if board[0][0] == 0:")
        p.add(2, f"{best} = {p.lit(rng.choice(MOVES))}")
        p.add(1, f"return {best[:-1]}{best[-1] * 2}")
    elif shape == 6:  # numpy name without an import
        p.add(1, "b = np.array(board)")
        p.add(1, f"return {mv}[int(b.argmax()) % 4]")
    elif shape == 7:
        p.add(1, rng.choice(["total = sum(board)", "total = board + 1", "total = max(board) * 2"]))
        p.add(1, f"return {mv}[total % 4]")
    else:
        p.add(1, rng.choice(["n, _ = board.shape", "n = board.size", "b = board.T"]))
        p.add(1, f"return {p.lit('S')}")
    return p.source()


# ----------------------------------------------------------------------------------------------------
# Corpus
# ----------------------------------------------------------------------------------------------------

# (kind, category, generator); the order fixes how the counts and the random stream are laid out.
KINDS = [
    ("corner", "good", gen_corner),
    ("greedy_empty", "good", gen_greedy_empty),
    ("greedy_merge", "good", gen_greedy_merge),
    ("lookahead_bonus", "good", gen_lookahead_bonus),
    ("constant", "poor", gen_constant),
    ("cycle", "poor", gen_cycle),
    ("random", "poor", gen_random),
    ("syntax_error", "broken", gen_syntax_error),
    ("banned_import", "broken", gen_banned_import),
    ("endless_loop", "broken", gen_endless_loop),
    ("invalid_return", "broken", gen_invalid_return),
    ("exception", "broken", gen_exception),
]
CATEGORY_SHARE = {"good": 0.45, "poor": 0.30, "broken": 0.25}


def kind_counts(n):
    """Lines per kind for a corpus of n lines: categories get round(share * n) (broken takes the
    rest), split evenly over their kinds with the remainder going to the first kinds."""
    good = round(CATEGORY_SHARE["good"] * n)
    poor = round(CATEGORY_SHARE["poor"] * n)
    per_cat = {"good": good, "poor": poor, "broken": n - good - poor}
    counts = {}
    for cat, total in per_cat.items():
        kinds = [k for k, c, _ in KINDS if c == cat]
        for i, k in enumerate(kinds):
            counts[k] = total // len(kinds) + (1 if i < total % len(kinds) else 0)
    return counts


def completion_of(src):
    return FENCE_OPEN + src + FENCE_CLOSE


def build_corpus(n, seed):
    """The corpus as a list of dicts (prompt, completion, kind, category), deterministic in (n, seed).
    A program longer than MAX_COMPLETION_CHARS once fenced is drawn again."""
    rng = random.Random(seed)
    counts = kind_counts(n)
    records = []
    for kind, cat, gen in KINDS:
        for _ in range(counts[kind]):
            while True:
                comp = completion_of(gen(rng))
                if len(comp) <= MAX_COMPLETION_CHARS:
                    break
            records.append({"prompt": PROMPT, "completion": comp, "kind": kind, "category": cat})
    rng.shuffle(records)
    return records


def corpus_bytes(records):
    return "".join(json.dumps(r, ensure_ascii=True) + "\n" for r in records).encode("ascii")


# ----------------------------------------------------------------------------------------------------
# Verifier: worker side (runs inside the subprocess)
# ----------------------------------------------------------------------------------------------------

class CallTimeout(BaseException):
    """Raised by SIGALRM when one strategy call runs past its time limit (BaseException, so that a
    strategy's `except Exception` cannot swallow it)."""


def banned_imports(tree):
    """Top-level module names imported anywhere in tree (an ast.Module) that are not standard library."""
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if node.level == 0 else []
        else:
            continue
        bad += [nm for nm in names if nm.split(".")[0] not in STDLIB_MODULES]
    return bad


def _timed(fn, limit_s, *args):
    """fn(*args) with a SIGALRM limit of limit_s seconds; raises CallTimeout past it."""
    signal.setitimer(signal.ITIMER_REAL, limit_s)
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def play_game(strategy, n, seed, limit_s, max_calls, stuck_after, target):
    """Plays one n x n reference game with strategy (board -> move). Spawns use random.Random(seed);
    the global random module is seeded with seed too, so random strategies are reproducible.

    Returns a dict: outcome ('ended' no move changes the board, 'won' a tile >= target, 'stuck'
    stuck_after calls in a row changed nothing while a move could, 'move_cap' max_calls calls,
    'timeout' a call ran past limit_s seconds, 'invalid_return' the value is not a move,
    'exception' the call raised), detail, max_tile, moves (board-changing moves), calls."""
    rng = random.Random(seed)
    random.seed(seed)
    board = new_board(n, rng)
    moves = calls = idle = 0
    outcome, detail = None, ""
    while outcome is None:
        if max(map(max, board)) >= target:
            outcome = "won"
            break
        if not can_move(board):
            outcome = "ended"
            break
        if calls >= max_calls:
            outcome = "move_cap"
            break
        calls += 1
        try:
            result = _timed(strategy, limit_s, [row[:] for row in board])
        except CallTimeout:
            outcome, detail = "timeout", f"call {calls} ran past {limit_s} s"
            break
        except Exception as exc:  # the strategy's own error is what we measure
            outcome, detail = "exception", type(exc).__name__
            break
        if not (isinstance(result, str) and len(result) == 1 and result.upper() in MOVES):
            outcome, detail = "invalid_return", repr(result)[:40]
            break
        new, _, changed = apply_move(board, result.upper())
        if changed:
            board = new
            spawn_tile(board, rng)
            moves += 1
            idle = 0
        else:
            idle += 1
            if idle >= stuck_after:
                outcome, detail = "stuck", f"{result} changes nothing"
    return {"n": n, "outcome": outcome, "detail": detail, "max_tile": max(map(max, board)),
            "moves": moves, "calls": calls}


def worker_main():
    """--worker: reads one job as JSON on stdin ({"code", "games": [[n, seed], ...], "limit_s",
    "max_calls", "stuck_after", "target"}), writes one JSON result on stdout: {"status": 'ok' |
    'syntax_error' | 'banned_import' | 'no_strategy' | 'define_error', "detail", "games": [...]}.
    Games stop at the first one that fails with timeout / invalid_return / exception."""
    job = json.load(sys.stdin)
    real_stdout = sys.stdout
    sys.stdout = open(os.devnull, "w")  # a strategy that prints must not corrupt the result
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    except (ImportError, ValueError, OSError):
        pass

    def on_alarm(signum, frame):
        raise CallTimeout()

    signal.signal(signal.SIGALRM, on_alarm)
    result = {"status": "ok", "detail": "", "games": []}
    code = job["code"]
    try:
        compiled = compile(code, "<strategy>", "exec")
    except SyntaxError as exc:
        result.update(status="syntax_error", detail=f"{type(exc).__name__}: {exc.msg}")
    else:
        bad = banned_imports(ast.parse(code))
        if bad:
            result.update(status="banned_import", detail=",".join(bad))
    if result["status"] == "ok":
        ns = {"__name__": "strategy_module"}
        try:
            _timed(exec, job["limit_s"], compiled, ns)
        except (CallTimeout, Exception) as exc:
            result.update(status="define_error", detail=type(exc).__name__)
        else:
            strategy = ns.get("strategy")
            if not callable(strategy):
                result.update(status="no_strategy")
            else:
                for n, seed in job["games"]:
                    g = play_game(strategy, n, seed, job["limit_s"], job["max_calls"],
                                  job["stuck_after"], job["target"])
                    result["games"].append(g)
                    if g["outcome"] in ("timeout", "invalid_return", "exception"):
                        break
    real_stdout.write(json.dumps(result))
    real_stdout.flush()
    return 0


# ----------------------------------------------------------------------------------------------------
# Verifier: parent side
# ----------------------------------------------------------------------------------------------------

GOOD_OUTCOMES = {"ended", "won"}
# A good kind's mean max tile on 4x4 must be at least this multiple of random play's. Measured: the
# pure corner order ~1.8x, one-step greedy ~2.2x, lookahead with smoothness ~3.4x (random ~105).
GOOD_OVER_RANDOM = 1.5


def label_holds(kind, res):
    """True when a worker result matches what kind promises: good kinds and random play every game
    to the end ('ended' or 'won'); constant gets stuck in every game; cycle plays without error
    (ended, won or stuck); syntax_error fails compile(); banned_import has a non-stdlib import;
    endless_loop times out (the first call, or a later one for endless_corner); invalid_return's
    first call returns a non-move; exception's first call raises."""
    st = res["status"]
    outs = [g["outcome"] for g in res["games"]]
    if kind in ("corner", "greedy_empty", "greedy_merge", "lookahead_bonus", "random"):
        return st == "ok" and bool(outs) and all(o in GOOD_OUTCOMES for o in outs)
    if kind == "constant":
        return st == "ok" and bool(outs) and all(o == "stuck" for o in outs)
    if kind == "cycle":
        return st == "ok" and bool(outs) and all(o in GOOD_OUTCOMES | {"stuck"} for o in outs)
    if kind == "syntax_error":
        return st == "syntax_error"
    if kind == "banned_import":
        return st == "banned_import"
    if kind == "endless_loop":
        return st == "ok" and outs[-1:] == ["timeout"]
    if kind == "invalid_return":
        return st == "ok" and outs[:1] == ["invalid_return"]
    if kind == "exception":
        return st == "ok" and outs[:1] == ["exception"]
    raise AssertionError(f"unknown kind {kind}")


def failure_mode(res):
    """A short name for what happened: the status when the code never ran (syntax errors with their
    flavour, banned imports with the module), else the games' outcomes (exceptions with their type)."""
    st, detail = res["status"], res.get("detail", "")
    if st == "syntax_error":
        if "expected ':'" in detail:
            return "syntax_error:colon"
        if "never closed" in detail or "parenthes" in detail:
            return "syntax_error:paren"
        if "indent" in detail.lower():
            return "syntax_error:indent"
        return "syntax_error:" + detail.split(": ", 1)[-1].replace(" ", "_")[:24]
    if st == "banned_import":
        return "banned_import:" + detail.split(",")[0].split(".")[0]
    if st != "ok":
        return st
    modes = sorted({g["outcome"] + (":" + g["detail"] if g["outcome"] == "exception" else "")
                    for g in res["games"]})
    return "+".join(modes) if modes else "no_games"


def run_worker(job, backstop_s):
    """Runs one job in a fresh `python3 -I make_sft_data.py --worker` subprocess. A worker that runs
    past backstop_s seconds is killed and reported as status 'killed'."""
    try:
        proc = subprocess.run([sys.executable, "-I", os.path.abspath(__file__), "--worker"],
                              input=json.dumps(job), capture_output=True, text=True, timeout=backstop_s)
    except subprocess.TimeoutExpired:
        return {"status": "killed", "detail": f"worker ran past {backstop_s} s", "games": []}
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        return {"status": "worker_crash", "detail": proc.stderr[-300:], "games": []}


def static_checks(data, records, n_expected):
    """Checks every line: JSON shape, exact prompt, fenced completion, length cap, category, compile
    status and banned imports against the kind. Returns a list of problem strings."""
    problems = []
    cat_of = {k: c for k, c, _ in KINDS}
    if len(records) != n_expected:
        problems.append(f"{len(records)} lines, expected {n_expected}")
    for ln, r in enumerate(records, 1):
        if list(r) != ["prompt", "completion", "kind", "category"]:
            problems.append(f"line {ln}: keys {list(r)}")
            continue
        if r["prompt"] != PROMPT:
            problems.append(f"line {ln}: prompt differs from PROMPT")
        comp = r["completion"]
        # a syntax error may sit in the def line itself (missing colon, unclosed parenthesis)
        head = FENCE_OPEN + ("def strategy(" if r["kind"] == "syntax_error" else DEF_LINE + "\n")
        if not (comp.startswith(head) and comp.endswith(FENCE_CLOSE)):
            problems.append(f"line {ln}: completion is not a fenced `def strategy(board):` block")
            continue
        if comp.count("```") != 2:
            problems.append(f"line {ln}: completion has extra fences")
        if len(comp) > MAX_COMPLETION_CHARS:
            problems.append(f"line {ln}: completion has {len(comp)} chars > {MAX_COMPLETION_CHARS}")
        kind = r["kind"]
        if cat_of.get(kind) != r["category"]:
            problems.append(f"line {ln}: kind {kind!r} with category {r['category']!r}")
            continue
        code = comp[len(FENCE_OPEN):-len(FENCE_CLOSE)]
        try:
            compile(code, "<strategy>", "exec")
        except SyntaxError:
            if kind != "syntax_error":
                problems.append(f"line {ln}: {kind} does not compile")
            continue
        if kind == "syntax_error":
            problems.append(f"line {ln}: syntax_error compiles")
        if bool(banned_imports(ast.parse(code))) != (kind == "banned_import"):
            problems.append(f"line {ln}: {kind} banned-import status wrong")
    if data and not data.endswith(b"\n"):
        problems.append("file does not end with a newline")
    return problems


def check(path, n, seed, per_kind, games, jobs, regenerate):
    """Verifies the corpus at path; prints the per-kind table. Returns the process exit code: 0 when
    every label holds, 1 otherwise."""
    self_test_game()
    with open(path, "rb") as f:
        data = f.read()
    records = [json.loads(line) for line in data.decode("ascii").splitlines()]
    problems = static_checks(data, records, n)
    if regenerate and corpus_bytes(build_corpus(n, seed)) != data:
        problems.append(f"regenerating with --n {n} --seed {seed} does not reproduce {path}")

    by_kind = {k: [r for r in records if r["kind"] == k] for k, _, _ in KINDS}
    rng = random.Random(seed + 1)
    jobs_list = []
    for kind, cat, _ in KINDS:
        sample = rng.sample(by_kind[kind], min(per_kind, len(by_kind[kind])))
        for idx, r in enumerate(sample):
            code = r["completion"][len(FENCE_OPEN):-len(FENCE_CLOSE)]
            # the i-th sample of every kind plays the same 4x4 games, so kinds compare fairly
            game_list = [[4, 1000 * idx + j] for j in range(games)]
            if cat == "good":  # must work for any N: one 3x3 and one 6x6 game as well
                game_list += [[3, 1000 * idx + 900], [6, 1000 * idx + 901]]
            job = {"code": code, "games": game_list, "limit_s": 1.0, "max_calls": 20000,
                   "stuck_after": 64, "target": 2048}
            jobs_list.append((kind, r, job))
    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
        results = list(ex.map(lambda j: run_worker(j[2], 120.0), jobs_list))
    elapsed = time.time() - t0

    header = (f"{'kind':<16} {'category':<8} {'count':>5} {'uniq':>5} {'len':>5} {'min':>4} {'max':>4} "
              f"{'run':>4} {'ok':>4} {'maxtile':>7}  failure modes (sampled)")
    print(header)
    print("-" * len(header))
    mean_max = {}
    for kind, cat, _ in KINDS:
        recs = by_kind[kind]
        lens = [len(r["completion"]) for r in recs]
        rows = [(res, label_holds(kind, res)) for (k, _, _), res in zip(jobs_list, results) if k == kind]
        for (k, r, _), res in zip(jobs_list, results):
            if k == kind and not label_holds(kind, res):
                detail = res.get("detail") or (res["games"][-1]["detail"] if res["games"] else "")
                problems.append(f"{kind}: label does not hold ({failure_mode(res)}: {detail}) for:\n"
                                f"{r['completion']}")
        tiles = [g["max_tile"] for res, _ in rows for g in res["games"] if g["n"] == 4 and
                 res["status"] == "ok" and g["outcome"] in GOOD_OUTCOMES | {"stuck", "move_cap"}]
        mean_max[kind] = statistics.mean(tiles) if tiles else None
        modes = {}
        for res, _ in rows:
            fm = failure_mode(res)
            modes[fm] = modes.get(fm, 0) + 1
        mode_txt = " ".join(f"{m}:{c}" for m, c in sorted(modes.items(), key=lambda kv: -kv[1]))
        mt = f"{mean_max[kind]:7.0f}" if mean_max[kind] is not None else f"{'-':>7}"
        print(f"{kind:<16} {cat:<8} {len(recs):5d} {len({r['completion'] for r in recs}):5d} "
              f"{statistics.mean(lens) if lens else 0:5.0f} {min(lens, default=0):4d} "
              f"{max(lens, default=0):4d} {len(rows):4d} {sum(ok for _, ok in rows):4d} {mt}  {mode_txt}")

    total = len(records)
    cats = {c: sum(r["category"] == c for r in records) for c in CATEGORY_SHARE}
    lens = [len(r["completion"]) for r in records]
    in_range = sum(150 <= x <= 500 for x in lens)
    print()
    print(f"lines {total}: " + ", ".join(f"{c} {cats[c]} ({100 * cats[c] / max(total, 1):.1f}%)"
                                        for c in CATEGORY_SHARE))
    print(f"completion length: mean {statistics.mean(lens):.0f}, max {max(lens)}, "
          f"{100 * in_range / total:.1f}% within 150..500 chars; "
          f"unique completions {len({r['completion'] for r in records})}")
    print(f"file size {len(data)} bytes ({len(data) / 1e6:.2f} MB); the prompt alone takes "
          f"{total * len(json.dumps(PROMPT))} bytes")
    if len(data) > SIZE_BUDGET_BYTES:
        print(f"WARNING: file is over the {SIZE_BUDGET_BYTES / 1e6:.0f} MB budget")
    print(f"ran {len(jobs_list)} strategies ({games} 4x4 games each, +3x3 and 6x6 for good) in "
          f"{elapsed:.1f} s with {jobs} jobs; max tile = mean over 4x4 games that ran to an end or got stuck")

    rnd = mean_max.get("random")
    if rnd:
        print("mean max tile / random play's: " + ", ".join(
            f"{k} {mean_max[k] / rnd:.2f}x" for k, c, _ in KINDS if c == "good" and mean_max[k]))
    for kind, cat, _ in KINDS:
        if cat == "good" and rnd and (mean_max[kind] or 0) < GOOD_OVER_RANDOM * rnd:
            problems.append(f"{kind}: mean max tile {mean_max[kind]} is not clearly above random play "
                            f"({rnd:.0f}); want at least {GOOD_OVER_RANDOM}x")
    if problems:
        print(f"\n{len(problems)} problem(s):")
        for pr in problems[:40]:
            print("  " + pr)
        return 1
    print("all labels hold")
    return 0


def main(argv):
    ap = argparse.ArgumentParser(description="Build and verify grpo2048's SFT corpus (JSONL).")
    ap.add_argument("--out", default="model/default/sft.jsonl", help="corpus path (written, or checked)")
    ap.add_argument("--n", type=int, default=3000, help="number of lines")
    ap.add_argument("--seed", type=int, default=0, help="generator seed")
    ap.add_argument("--check", action="store_true", help="verify the corpus after writing it")
    ap.add_argument("--check-only", action="store_true",
                    help="verify --out without writing it (also checks it regenerates byte for byte)")
    ap.add_argument("--sample", type=int, default=24, help="strategies run per kind when checking")
    ap.add_argument("--games", type=int, default=3, help="4x4 games per sampled strategy")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel worker processes")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker_main()
    if args.n < len(KINDS):
        ap.error(f"--n must be at least {len(KINDS)} (one line per kind), got {args.n}")
    if not args.check_only:
        data = corpus_bytes(build_corpus(args.n, args.seed))
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "wb") as f:
            f.write(data)
        print(f"wrote {args.n} lines, {len(data)} bytes to {args.out}")
    if args.check or args.check_only:
        return check(args.out, args.n, args.seed, args.sample, args.games, args.jobs,
                     regenerate=args.check_only)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
