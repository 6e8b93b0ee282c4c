def strategy(board):
    # Keep the big tiles in the bottom-left corner: try down, left, right, up, in that order, and play
    # the first move that changes the board (simulated here on a copy).
    n = len(board)

    def slide(row):
        tiles = [v for v in row if v]
        out = []
        i = 0
        while i < len(tiles):
            if i + 1 < len(tiles) and tiles[i] == tiles[i + 1]:
                out.append(tiles[i] * 2)
                i += 2
            else:
                out.append(tiles[i])
                i += 1
        return out + [0] * (n - len(out))

    def moved(move):
        if move == "A":
            rows = [slide(r) for r in board]
            return rows != board
        if move == "D":
            rows = [slide(r[::-1])[::-1] for r in board]
            return rows != board
        cols = [[board[r][c] for r in range(n)] for c in range(n)]
        if move == "W":
            new = [slide(col) for col in cols]
        else:
            new = [slide(col[::-1])[::-1] for col in cols]
        return new != cols

    for move in ("S", "A", "D", "W"):
        if moved(move):
            return move
    return "S"
