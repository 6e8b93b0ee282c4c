def strategy(board):
    raise SystemExit
