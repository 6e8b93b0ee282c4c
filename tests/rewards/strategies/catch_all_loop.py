def strategy(board):
    # An endless loop that swallows every exception a timer could raise in it (TimeoutError from a
    # SIGALRM handler, KeyboardInterrupt, SystemExit): only a kill from outside stops it.
    while True:
        try:
            while True:
                pass
        except BaseException:
            pass
