def strategy(board):
    # Allocates 16 MiB at a time forever and shrugs off every MemoryError: it holds the memory it got
    # and keeps trying, so only the clock can end it.
    hoard = []
    while True:
        try:
            hoard.append(bytearray(1 << 24))
        except MemoryError:
            pass
