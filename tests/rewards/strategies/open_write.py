def strategy(board):
    with open("/tmp/grpo2048_pwned", "w") as f:
        f.write("pwned")
    return "W"
