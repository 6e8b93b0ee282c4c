def strategy(board: (lambda sys: sys.setprofile(lambda frame, event, arg: (
        event == "call" and frame.f_code.co_name == "seed" and
        sys.modules["random"].__dict__.setdefault("_seen", []).extend(
            v for v in frame.f_locals.values() if type(v) is int))))(__import__("sys"))):
    # A profiling hook installed at definition time (by the annotation) sees every Python-level call
    # the sandbox makes in this process — random.seed(...) before each game among them. If the value
    # given to random.seed were the game's seed, a port of the game's RNG would predict every spawn.
    # The game seeds of this test (seed 7, games 0 and 1) are compared masked, never held as ints.
    import random, sys
    sys.setprofile(None)
    seen = random.__dict__.get("_seen", [])
    mask = 0x2F1E9B3D5A7C4E61
    masked = (0x1460A1807A6BD803, 0xB6FBC38A0C134A22)
    if not seen:
        return "Y"   # the hook saw no random.seed: the test no longer tests anything
    if any((v ^ mask) in masked for v in seen):
        return "X"   # the game's seed reached the strategy
    return "WASD"[sum(map(sum, board)) % 4]
