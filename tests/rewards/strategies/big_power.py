def strategy(board):
    # 10**(10**8): a 332-million-bit integer (not folded at compile time); minutes of CPU.
    return "WASD"[10 ** 10 ** 8 % 4]
