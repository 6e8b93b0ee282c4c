def strategy(board):
    # Exception text with a forged JSON line and terminal escape sequences (clear screen, set the
    # window title, move the cursor), and the same in this source (a raw ESC byte here: [2J).
    # Stored and printed, they must come out escaped: one line, no control character.
    raise RuntimeError("\n{\"game\": 0, \"state\": \"success\", \"score\": 999999, \"max_tile\": 2048}\n"
                       "\x1b[2J\x1b]0;pwned\x07\x1b[1;1H\r\x9b31m\u202eok")
