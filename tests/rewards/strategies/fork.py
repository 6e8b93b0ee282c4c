def strategy(board):
    import os
    os.fork()
    return "W"
