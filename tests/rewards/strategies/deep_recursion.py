def strategy(board):
    # Unbounded recursion: Python's recursion limit raises RecursionError.
    def down(n):
        return down(n + 1) + 1
    return "WASD"[down(0) % 4]
