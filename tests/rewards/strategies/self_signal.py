def strategy(board):
    # Signals to itself are allowed (the `signal` wrapper module is not pre-imported; _signal is).
    import os, _signal
    got = []
    _signal.signal(_signal.SIGUSR1, lambda s, f: got.append(s))
    os.kill(os.getpid(), _signal.SIGUSR1)
    return "WASD"[sum(map(sum, board)) % 4] if got else "X"
