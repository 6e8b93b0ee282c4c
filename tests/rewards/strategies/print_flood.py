def strategy(board):
    # Megabytes to stdout and stderr on each of its first moves, through print and straight to the
    # fds; its moves cycle W, A, S, D, so the game runs to its end.
    import os, sys
    strategy.calls = getattr(strategy, "calls", -1) + 1
    if strategy.calls < 4:
        blob = "x" * (1 << 20)
        print(blob)
        print(blob, file=sys.stderr)
        for fd in (1, 2):
            try:
                os.write(fd, blob.encode())
            except OSError:
                pass
    return "WASD"[strategy.calls % 4]
