def strategy(board):
    # Ignores every signal a timer would use, cancels any pending alarm and interval timer (where the
    # sandbox lets it), then loops.
    import _signal
    for name in ("SIGALRM", "SIGXCPU", "SIGVTALRM", "SIGPROF", "SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1"):
        _signal.signal(getattr(_signal, name), _signal.SIG_IGN)
    for cancel in (lambda: _signal.alarm(0), lambda: _signal.setitimer(_signal.ITIMER_REAL, 0),
                   lambda: _signal.setitimer(_signal.ITIMER_VIRTUAL, 0),
                   lambda: _signal.setitimer(_signal.ITIMER_PROF, 0)):
        try:
            cancel()
        except OSError:
            pass
    while True:
        pass
