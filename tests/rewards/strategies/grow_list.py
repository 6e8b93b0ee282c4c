def strategy(board):
    # A list that grows forever, 1 MiB per step, until memory runs out.
    hoard = []
    while True:
        hoard.append([0] * (1 << 17))
