def strategy(board):
    return "W" if board[0][0] else
