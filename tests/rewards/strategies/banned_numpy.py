def strategy(board):
    import numpy as np
    return "WASD"[int(np.argmax(np.array(board)) % 4)]
