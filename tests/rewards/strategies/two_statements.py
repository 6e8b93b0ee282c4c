MOVES = "WASD"
def strategy(board):
    return MOVES[0]
