def strategy(board):
    # One allocation of 1 GiB: more than the 512 MiB the sandbox adds to the address space.
    blob = "x" * (1 << 30)
    return "WASD"[len(blob) % 4]
