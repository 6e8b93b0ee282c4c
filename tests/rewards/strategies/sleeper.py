def strategy(board):
    import time
    time.sleep(30)
    return "W"
