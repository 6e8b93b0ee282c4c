def strategy(board):
    with open("/etc/passwd") as f:
        f.read()
    return "W"
