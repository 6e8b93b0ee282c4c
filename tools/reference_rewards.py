#!/usr/bin/env python3
"""tools/reference_rewards.py: the Python baseline that bench/bench_rewards.c compares grpo2048's reward
pool against — what the public Unsloth 2048 GRPO notebook does to score a strategy, made parallel:

  * the notebook's game, in Python: its GameBoard (a list-of-lists board, _move_left / _move_right /
    _transpose / _move_up / _move_down, _empty_cells, _can_move, the state updated after every action),
    and its execute_strategy loop, which hands the strategy list(game.board()) each move. One change:
    the random numbers. The notebook draws with random.Random; here they come from a port of game2048's
    splitmix64 stream and spawn protocol (and game_seed_mix), so that for the same seeds both play
    exactly the same games — the benchmark checks it (same total moves and score). Like grpo2048 it
    ends a game as stuck after 1000 moves in a row that change nothing (the notebook would spin until
    its timer), and calls random.seed(python_seed(game seed)) before each game — grpo2048 seeds a
    strategy's `random` with SipHash-2-4 of the game seed (rewards/wire.c, rw_python_seed), a one-way
    function, so the strategy learns nothing about the spawns; ported here so random strategies match;
  * a strategy that does not return one of W/A/S/D is an invalid move (the notebook: "failed");
  * the time limit as the notebook sets it, a SIGALRM timer around the game (execute_with_time_limit),
    plus a kill from the parent at the limit + 50 ms for strategies that ignore or outlast the alarm;
  * parallel with multiprocessing, two ways (--mode):
      pool     W long-lived worker processes, one game at a time each; a worker that overruns is killed
               and replaced (the fastest Python can do; nothing isolates one strategy from the next);
      process  a fresh multiprocessing.Process (fork) per game, W at a time, killed if still running at
               the limit (one process per strategy, the isolation grpo2048 gives every job).
There is no sandbox: strategies run with the benchmark's privileges. Only for trusted strategies.

Usage: reference_rewards.py --strategy FILE.py [--games N] [--workers W] [--timeout SEC] [--target T]
                            [--first-seed S] [--mode pool|process] [--games-per-job G] [--json]
The N games are N / G jobs of G games (one task, or one process, per job); job j uses base seed S + j and
its game g plays game_seed_mix(S + j, g, 0), as grpo2048 does for job j of a batch whose seeds are S,
S + 1, ... with rewards.games_per_strategy = G. Prints games/s, outcomes (of each job's first game) and
the checksum (or one JSON object).
"""
import argparse
import json
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import random
import signal
import sys
import time
from typing import List, Tuple

MASK = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15
GRACE = 0.05          # seconds past the time limit before the parent kills a worker (REWARD_KILL_GRACE)
MAX_STUCK = 1000


# ---------------------------------------------------------------- random numbers (port of game2048/game.c)

def _finalize(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def game_seed_mix(seed, a, b):
    h = _finalize((seed + GAMMA) & MASK)
    h = _finalize((h + a + 2 * GAMMA) & MASK)
    return _finalize((h + b + 3 * GAMMA) & MASK)


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & MASK


def _sip_round(v0, v1, v2, v3):
    v0 = (v0 + v1) & MASK; v1 = _rotl(v1, 13); v1 ^= v0; v0 = _rotl(v0, 32)
    v2 = (v2 + v3) & MASK; v3 = _rotl(v3, 16); v3 ^= v2
    v0 = (v0 + v3) & MASK; v3 = _rotl(v3, 21); v3 ^= v0
    v2 = (v2 + v1) & MASK; v1 = _rotl(v1, 17); v1 ^= v2; v2 = _rotl(v2, 32)
    return v0, v1, v2, v3


def python_seed(game_seed):
    """rw_python_seed: SipHash-2-4 of the 64-bit game seed under grpo2048's fixed key."""
    k0, k1 = 0x6772706F32303438, 0x7079746872616E64
    v0, v1 = k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D
    v2, v3 = k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573
    m, b = game_seed & MASK, 8 << 56
    v3 ^= m
    v0, v1, v2, v3 = _sip_round(v0, v1, v2, v3)
    v0, v1, v2, v3 = _sip_round(v0, v1, v2, v3)
    v0 ^= m
    v3 ^= b
    v0, v1, v2, v3 = _sip_round(v0, v1, v2, v3)
    v0, v1, v2, v3 = _sip_round(v0, v1, v2, v3)
    v0 ^= b
    v2 ^= 0xFF
    for _ in range(4):
        v0, v1, v2, v3 = _sip_round(v0, v1, v2, v3)
    return v0 ^ v1 ^ v2 ^ v3


class SplitMix:
    """game2048's RNG and its two draws: an unbiased index below a bound, and a 2-or-4 coin."""

    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + GAMMA) & MASK
        return _finalize(self.state)

    def below(self, bound):
        m = (self.next() >> 32) * bound
        low = m & 0xFFFFFFFF
        if low < bound:
            threshold = ((1 << 32) - bound) % bound
            while low < threshold:
                m = (self.next() >> 32) * bound
                low = m & 0xFFFFFFFF
        return m >> 32

    def four(self, p):
        return (self.next() >> 11) * (2.0 ** -53) < p


# ---------------------------------------------------------------- the notebook's game

def _compress_and_merge_row_left(row: List[int]) -> Tuple[List[int], int, bool]:
    n = len(row)
    tiles = [x for x in row if x != 0]
    gained = 0
    i = 0
    merged = []
    while i < len(tiles):
        if i + 1 < len(tiles) and tiles[i] == tiles[i + 1]:
            v = tiles[i] * 2
            gained += v
            merged.append(v)
            i += 2
        else:
            merged.append(tiles[i])
            i += 1
    merged += [0] * (n - len(merged))
    return merged, gained, merged != row


def _move_left(board):
    changed_any, total_gain, new_board = False, 0, []
    for row in board:
        new_row, gained, changed = _compress_and_merge_row_left(row)
        new_board.append(new_row)
        total_gain += gained
        changed_any = changed_any or changed
    return new_board, total_gain, changed_any


def _move_right(board):
    changed_any, total_gain, new_board = False, 0, []
    for row in board:
        new_rev, gained, changed = _compress_and_merge_row_left(list(reversed(row)))
        new_board.append(list(reversed(new_rev)))
        total_gain += gained
        changed_any = changed_any or changed
    return new_board, total_gain, changed_any


def _transpose(board):
    return [list(row) for row in zip(*board)]


def _move_up(board):
    moved, gain, changed = _move_left(_transpose(board))
    return _transpose(moved), gain, changed


def _move_down(board):
    moved, gain, changed = _move_right(_transpose(board))
    return _transpose(moved), gain, changed


def _empty_cells(board):
    size = len(board)
    return [(r, c) for r in range(size) for c in range(size) if board[r][c] == 0]


def _can_move(board):
    if _empty_cells(board):
        return True
    size = len(board)
    for r in range(size):
        for c in range(size - 1):
            if board[r][c] == board[r][c + 1]:
                return True
    for r in range(size - 1):
        for c in range(size):
            if board[r][c] == board[r + 1][c]:
                return True
    return False


class GameBoard:
    MOVES = {"a": _move_left, "d": _move_right, "w": _move_up, "s": _move_down}

    def __init__(self, size=4, seed=0, target=2048, probability_fours=0.10):
        self.size, self.target, self.probability_fours = size, target, probability_fours
        self._rng = SplitMix(seed)
        self._board = [[0 for _ in range(size)] for _ in range(size)]
        self._score = 0
        self.moves = 0
        self._state = "ongoing"
        self._add_random_tile()
        self._add_random_tile()
        self._update_state_after_change()

    def board(self):
        return self._board

    def state(self):
        return self._state

    def score(self):
        return self._score

    def max_tile(self):
        return max(max(row) for row in self._board)

    def do_action(self, key):
        """Plays W/A/S/D (any case); returns True when the board changed."""
        if self._state != "ongoing":
            return False
        new_board, gain, changed = self.MOVES[key.lower()](self._board)
        if changed:
            self._board = new_board
            self._score += gain
            self.moves += 1
            self._add_random_tile()
        self._update_state_after_change()
        return changed

    def _add_random_tile(self):
        empties = _empty_cells(self._board)
        if not empties:
            return False
        r, c = empties[self._rng.below(len(empties))]
        self._board[r][c] = 4 if self._rng.four(self.probability_fours) else 2
        return True

    def _update_state_after_change(self):
        if any(v >= self.target for row in self._board for v in row):
            self._state = "success"
        elif not _can_move(self._board):
            self._state = "failed"
        else:
            self._state = "ongoing"


# ---------------------------------------------------------------- one game in a worker

class _Alarm(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Alarm()


def play(source, base_seed, timeout, target, games=1):
    """Plays games 0 .. games-1 of a job (game g seeded game_seed_mix(base_seed, g, 0), each with its own
    time limit): returns (outcome of game 0, total moves, total score, largest tile)."""
    ns = {"__name__": "__strategy__"}
    try:
        exec(compile(source, "<strategy>", "exec"), ns)
        strategy = ns["strategy"]
    except Exception:
        return ("build_failed", 0, 0, 0)
    results = [play_one(strategy, game_seed_mix(base_seed, g, 0), timeout, target) for g in range(games)]
    return (results[0][0], sum(r[1] for r in results), sum(r[2] for r in results), max(r[3] for r in results))


def play_one(strategy, seed, timeout, target):
    """Plays one game: returns (outcome, moves, score, max_tile)."""
    game = GameBoard(4, seed, target, 0.10)
    random.seed(python_seed(seed))
    outcome, unchanged, t0 = None, 0, time.monotonic()
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        while game.state() == "ongoing":
            action = strategy(list(game.board()))
            if type(action) is not str or len(action) != 1 or action.lower() not in "wasd":
                outcome = "invalid_move"
                break
            if game.do_action(action):
                unchanged = 0
            else:
                unchanged += 1
                if unchanged >= MAX_STUCK:
                    outcome = "stuck"
                    break
            if game.state() == "ongoing" and time.monotonic() - t0 > timeout:
                outcome = "timeout"
                break
    except _Alarm:
        outcome = "timeout"
    except MemoryError:
        outcome = "memory"
    except Exception:
        outcome = "exception"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    if outcome is None:
        outcome = game.state()
    return (outcome, game.moves, game.score(), game.max_tile())


def _worker(conn):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        conn.send(play(*task))


# ---------------------------------------------------------------- the pool

class Pool:
    def __init__(self, workers, ctx):
        self.ctx = ctx
        self.slots = [self._start() for _ in range(workers)]

    def _start(self):
        parent, child = self.ctx.Pipe()
        p = self.ctx.Process(target=_worker, args=(child,), daemon=True)
        p.start()
        child.close()
        return {"proc": p, "conn": parent, "task": None, "deadline": 0.0}

    def run(self, tasks, timeout):
        """tasks: list of (source, base_seed, timeout, target); returns results in order."""
        results = [None] * len(tasks)
        nxt = 0
        while nxt < len(tasks) or any(s["task"] is not None for s in self.slots):
            for s in self.slots:
                if s["task"] is None and nxt < len(tasks):
                    s["conn"].send(tasks[nxt])
                    s["task"] = nxt
                    s["deadline"] = time.monotonic() + tasks[nxt][4] * (timeout + GRACE)
                    nxt += 1
            busy = [s for s in self.slots if s["task"] is not None]
            wait = max(0.0, min(s["deadline"] for s in busy) - time.monotonic())
            ready = mpc.wait([s["conn"] for s in busy], timeout=wait)
            now = time.monotonic()
            for i, s in enumerate(self.slots):
                if s["task"] is None:
                    continue
                if s["conn"] in ready:
                    try:
                        results[s["task"]] = s["conn"].recv()
                    except EOFError:
                        results[s["task"]] = ("crash", 0, 0, 0)
                        self._replace(i)
                        continue
                    s["task"] = None
                elif now >= s["deadline"]:
                    # The strategy did not give the timer back: kill the worker, start another.
                    results[s["task"]] = ("timeout", 0, 0, 0)
                    self._replace(i)
        return results

    def _replace(self, i):
        s = self.slots[i]
        s["proc"].kill()
        s["proc"].join()
        s["conn"].close()
        self.slots[i] = self._start()

    def close(self):
        for s in self.slots:
            try:
                s["conn"].send(None)
            except (BrokenPipeError, OSError):
                pass
        for s in self.slots:
            s["proc"].join(timeout=2)
            if s["proc"].is_alive():
                s["proc"].kill()
                s["proc"].join()


def _one_game(conn, task):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn.send(play(*task))
    conn.close()


def run_processes(tasks, workers, timeout, ctx):
    """A fresh process per game, `workers` at a time, killed when still running at the limit + grace."""
    results = [None] * len(tasks)
    running = {}   # connection -> (index, process, deadline)
    nxt = 0
    while nxt < len(tasks) or running:
        while nxt < len(tasks) and len(running) < workers:
            parent, child = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_one_game, args=(child, tasks[nxt]), daemon=True)
            p.start()
            child.close()
            running[parent] = (nxt, p, time.monotonic() + tasks[nxt][4] * (timeout + GRACE))
            nxt += 1
        wait = max(0.0, min(d for _, _, d in running.values()) - time.monotonic())
        ready = mpc.wait(list(running), timeout=wait)
        now = time.monotonic()
        for conn in list(running):
            i, p, deadline = running[conn]
            if conn in ready:
                try:
                    results[i] = conn.recv()
                except EOFError:
                    results[i] = ("crash", 0, 0, 0)
            elif now >= deadline:
                p.kill()
                results[i] = ("timeout", 0, 0, 0)
            else:
                continue
            p.join()
            conn.close()
            del running[conn]
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--strategy", required=True)
    ap.add_argument("--games", type=int, default=100)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--target", type=int, default=2048)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--mode", choices=("pool", "process"), default="pool")
    ap.add_argument("--games-per-job", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    with open(a.strategy) as f:
        source = f.read()
    ctx = mp.get_context("fork")
    tasks = [(source, a.first_seed + j, a.timeout, a.target, a.games_per_job)
             for j in range(a.games // a.games_per_job)]
    if a.mode == "pool":
        pool = Pool(a.workers, ctx)
        t0 = time.monotonic()
        results = pool.run(tasks, a.timeout)
        seconds = time.monotonic() - t0
        pool.close()
    else:
        t0 = time.monotonic()
        results = run_processes(tasks, a.workers, a.timeout, ctx)
        seconds = time.monotonic() - t0
    outcomes = {}
    for r in results:
        outcomes[r[0]] = outcomes.get(r[0], 0) + 1
    report = {
        "games": len(tasks) * a.games_per_job, "games_per_job": a.games_per_job, "workers": a.workers, "mode": a.mode, "seconds": seconds, "games_per_second": len(tasks) * a.games_per_job / seconds,
        "outcomes": outcomes, "moves": sum(r[1] for r in results), "score": sum(r[2] for r in results),
        "python": sys.version.split()[0],
    }
    if a.json:
        print(json.dumps(report))
    else:
        print("%d games, %d workers (%s): %.2f s, %.1f games/s; outcomes %s; moves %d, score %d" % (
            report["games"], a.workers, a.mode, seconds, report["games_per_second"], outcomes, report["moves"],
            report["score"]))


if __name__ == "__main__":
    main()
