def strategy(board):
    pass
