def strategy(board):
    import time
    time.sleep(0.002)
    return "WASD"[sum(map(sum, board)) % 4]
