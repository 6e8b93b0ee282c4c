def strategy(board):
    # Busy-waits on the clock for a minute (no sleep call a timer could interrupt).
    import time
    start = time.monotonic()
    while time.monotonic() - start < 60:
        pass
    return "W"
