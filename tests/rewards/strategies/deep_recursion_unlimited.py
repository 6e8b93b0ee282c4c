def strategy(board):
    # Unbounded recursion with the recursion limit lifted: frames pile up until memory (or the clock)
    # runs out, or the C stack overflows.
    import sys
    sys.setrecursionlimit(10 ** 9)
    def down(n):
        return down(n + 1) + 1
    return "WASD"[down(0) % 4]
