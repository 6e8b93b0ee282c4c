def strategy(board):
    import _thread
    _thread.start_new_thread(print, ("hello",))
    return "W"
