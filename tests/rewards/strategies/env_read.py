def strategy(board):
    # Reads the environment: in the trainer it may hold API keys and tokens (the test plants
    # GRPO2048_SECRET_CANARY). The sandbox's environment must hold nothing of the trainer's.
    import os, posix
    names = set(os.environ) | {k.decode() for k in posix.environ}
    names.discard("GRPO2048_TU_MARK")   # the test suite's process marker, kept on purpose
    values = " ".join(os.environ.values())
    if names or "hunter2" in values:
        return "X"
    return "WASD"[sum(map(sum, board)) % 4]
