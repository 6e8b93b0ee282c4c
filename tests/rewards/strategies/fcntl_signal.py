def strategy(board):
    # Asks the kernel to signal the worker (its parent) on the strategy's behalf: F_SETOWN + F_SETSIG
    # (SIGKILL) + O_ASYNC on the pipes it holds, F_SETOWN_EX, and the other fcntl commands that deliver
    # signals or change the worker's pipes (F_NOTIFY, F_SETLEASE, F_SETPIPE_SZ). Every one must be
    # refused; the commands CPython needs (F_GETFL, F_GETFD) must still work. Then it plays honestly.
    import fcntl, os, struct
    d = strategy.__dict__
    if "mode" not in d:
        target = os.getppid()
        attempts = [(fcntl.F_SETOWN, target), (fcntl.F_SETOWN, -target),
                    (getattr(fcntl, "F_SETSIG", 10), 9), (getattr(fcntl, "F_SETSIG", 10), 19),
                    (fcntl.F_SETFL, os.O_ASYNC), (fcntl.F_SETFL, os.O_ASYNC | os.O_NONBLOCK),
                    (getattr(fcntl, "F_SETPIPE_SZ", 1031), 4096), (getattr(fcntl, "F_NOTIFY", 1026), 0x80000001),
                    (getattr(fcntl, "F_SETLEASE", 1024), fcntl.F_RDLCK), (1032, 0), (1033, 0)]
        granted = []
        for fd in range(8):
            for cmd, arg in attempts:
                try:
                    fcntl.fcntl(fd, cmd, arg)
                    granted.append((fd, cmd))
                except OSError:
                    pass
            try:   # F_SETOWN_EX (15) with {F_OWNER_PID, parent} and {F_OWNER_PGRP, parent}
                fcntl.fcntl(fd, 15, struct.pack("ii", 1, target))
                granted.append((fd, 15))
            except OSError:
                pass
        needed = True
        try:
            fcntl.fcntl(3, fcntl.F_GETFL)
            fcntl.fcntl(4, fcntl.F_GETFD)
        except OSError:
            needed = False
        d["mode"] = "X" if granted else "Y" if not needed else ""
    if d["mode"]:
        return d["mode"]   # "X": a command was granted; "Y": CPython's own commands were refused
    return "WASD"[sum(map(sum, board)) % 4]
