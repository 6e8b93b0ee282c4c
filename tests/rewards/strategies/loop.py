def strategy(board):
    while True:
        pass
