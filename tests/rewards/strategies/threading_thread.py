def strategy(board):
    import threading
    threading.Thread(target=print, args=("hello",)).start()
    return "W"
