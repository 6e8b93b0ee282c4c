def strategy(board):
    import sys
    for row in board:
        print(row)
    print("thinking...", file=sys.stderr)
    return "WASD"[sum(map(sum, board)) % 4]
