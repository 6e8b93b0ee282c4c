def strategy(board):
    # Returns "X" (an invalid move) when anything monkeypatch.py poisons is still poisoned.
    import builtins, random, math, ast, sys, gc
    clean = (not hasattr(builtins, "_grpo2048_pwned") and len("ab") == 2 and max(1, 2) == 2
             and isinstance("x", str) and not isinstance(1, str) and callable(compile)
             and random.random.__name__ == "random" and random.seed.__name__ == "seed"
             and math.sqrt(4.0) == 2.0 and ast.parse.__name__ == "parse"
             and sys.getrecursionlimit() >= 1000 and gc.isenabled())
    return random.choice("WASD") if clean else "X"
