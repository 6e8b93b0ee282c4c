def strategy(board):
    import time
    time.sleep(60)
    return "W"
