def strategy(board):
    return board[0][0] / 0
