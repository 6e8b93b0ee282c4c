def strategy(board):
    import random
    return random.choice("WASD")
