def strategy(board):
    # Sends itself SIGXCPU, the signal of the CPU-time limit, hoping to be scored a timeout (-1) instead
    # of a crash (-3). It used almost no CPU time: the worker must call it what it is, a crash.
    import os, _signal
    os.kill(os.getpid(), _signal.SIGXCPU)
    return "W"
