def strategy(board):
    # Corner-keeping with a one-step lookahead: simulate each move on a copy of the board, score the
    # result (empty cells, the largest tile in the bottom-left corner, rows falling away from it) and
    # play the best move that changes the board.
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

    def after(b, m):
        if m == "A":
            return [slide(r) for r in b]
        if m == "D":
            return [slide(r[::-1])[::-1] for r in b]
        cols = [[b[r][c] for r in range(n)] for c in range(n)]
        if m == "W":
            cols = [slide(c) for c in cols]
        else:
            cols = [slide(c[::-1])[::-1] for c in cols]
        return [[cols[c][r] for c in range(n)] for r in range(n)]

    def value(b):
        empty = sum(v == 0 for row in b for v in row)
        big = max(max(row) for row in b)
        corner = 4 * big if b[n - 1][0] == big else 0
        falling = sum(1 for row in b for x, y in zip(row, row[1:]) if x >= y)
        return 10 * empty + corner + falling

    best, best_value = None, None
    for m in "SADW":
        b = after(board, m)
        if b != board:
            v = value(b)
            if best is None or v > best_value:
                best, best_value = m, v
    return best or "S"
