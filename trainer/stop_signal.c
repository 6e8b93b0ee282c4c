/*
 * trainer/stop_signal.c: see stop_signal.h.
 */
#include "trainer/stop_signal.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t received = 0;
static const char *stop_message = "";

static void on_stop_signal(int sig) {
    if (!received) {   /* write(2) is async-signal-safe; strlen is too (POSIX.1-2016) */
        ssize_t w = write(STDERR_FILENO, "\n", 1);
        w = write(STDERR_FILENO, stop_message, strlen(stop_message));
        static const char tail[] = " (signal again to stop at once)\n";
        w = write(STDERR_FILENO, tail, sizeof tail - 1);
        (void)w;
    }
    received = sig;
}

void stop_signal_install(const char *message) {
    stop_message = message ? message : "";
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESETHAND;   /* a second signal takes the default action: stop at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int stop_signal_received(void) { return (int)received; }
