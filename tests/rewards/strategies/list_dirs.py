def strategy(board):
    import os
    names = os.listdir("/")
    return "WASD"[len(names) % 4]
