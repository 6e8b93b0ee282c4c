/*
 * trainer/progress.c: tqdm-style progress line on a terminal, plain log lines elsewhere (see progress.h).
 *
 * The bar follows tqdm's default format (tqdm/std.py format_meter): "{desc}: {pct:3.0f}%|{bar}| n/total
 * [elapsed<remaining, rate{, postfix}]" with a 10-cell bar drawn from eighth blocks, the rate as
 * "{:5.2f}s/it" below one iteration per second and "{:5.2f}it/s" above, and times as [h:]mm:ss
 * (format_interval). The rate is the average since the start: steps of RL training are long and
 * similar, so smoothing buys little.
 */
#include "trainer/progress.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static double mono_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* tqdm's format_interval: "mm:ss", or "h:mm:ss" from an hour on (seconds truncated). */
static void format_interval(char *buf, size_t n, double seconds) {
    long s = seconds > 0 ? (long)seconds : 0;
    long mins = s / 60, h = mins / 60;
    if (h) snprintf(buf, n, "%ld:%02ld:%02ld", h, mins % 60, s % 60);
    else snprintf(buf, n, "%02ld:%02ld", mins, s % 60);
}

/* Display columns of a UTF-8 string: every byte that does not continue a character counts one. */
static int columns(const char *s) {
    int c = 0;
    for (; *s; s++) c += ((unsigned char)*s & 0xC0) != 0x80;
    return c;
}

/* Cuts s to at most max_cols columns, at a character boundary. */
static void truncate_columns(char *s, int max_cols) {
    int c = 0;
    for (char *p = s; *p; p++) {
        if (((unsigned char)*p & 0xC0) != 0x80) {
            if (c == max_cols) { *p = '\0'; return; }
            c++;
        }
    }
}

int progress_format_bar(char *buf, size_t n, const char *desc, int done, int initial, int total, double elapsed_s,
                        const char *postfix, int max_cols) {
    static const char *const eighths[9] = {" ", "▏", "▎", "▍", "▌", "▋", "▊", "▉", "█"};
    char el[32], rem[32], rate[32];
    format_interval(el, sizeof el, elapsed_s);
    double per_s = done > initial && elapsed_s > 0 ? (done - initial) / elapsed_s : 0;
    if (per_s <= 0) snprintf(rate, sizeof rate, "?it/s");
    else if (per_s < 1) snprintf(rate, sizeof rate, "%5.2fs/it", 1.0 / per_s);
    else snprintf(rate, sizeof rate, "%5.2fit/s", per_s);
    const char *sep = postfix && postfix[0] ? ", " : "";
    const char *pf = postfix ? postfix : "";
    const char *d = desc && desc[0] ? desc : NULL;
    if (total <= 0) {
        snprintf(buf, n, "%s%s%dit [%s, %s%s%s]", d ? d : "", d ? ": " : "", done, el, rate, sep, pf);
    } else {
        double frac = done <= 0 ? 0 : done >= total ? 1 : (double)done / total;
        if (per_s > 0) format_interval(rem, sizeof rem, (total - (done < total ? done : total)) / per_s);
        else snprintf(rem, sizeof rem, "?");
        /* tqdm: divmod(int(frac * N_BARS * 8), 8) full cells and one partial cell */
        char bar[10 * 4 + 1];
        int eighth_cells = (int)(frac * 10 * 8);
        int full = eighth_cells / 8, part = eighth_cells % 8;
        size_t b = 0;
        for (int i = 0; i < full; i++) { memcpy(bar + b, eighths[8], 3); b += 3; }
        if (full < 10) {
            size_t l = strlen(eighths[part]);
            memcpy(bar + b, eighths[part], l);
            b += l;
            for (int i = full + 1; i < 10; i++) bar[b++] = ' ';
        }
        bar[b] = '\0';
        snprintf(buf, n, "%s%s%3.0f%%|%s| %d/%d [%s<%s, %s%s%s]", d ? d : "", d ? ": " : "", frac * 100, bar,
                 done, total, el, rem, rate, sep, pf);
    }
    if (max_cols > 0) truncate_columns(buf, max_cols);
    return columns(buf);
}

int progress_format_line(char *buf, size_t n, int done, int initial, int total, double elapsed_s, const char *postfix) {
    char rate[32];
    double per_s = done > initial && elapsed_s > 0 ? (done - initial) / elapsed_s : 0;
    if (per_s <= 0) snprintf(rate, sizeof rate, "? s/it");
    else if (per_s < 1) snprintf(rate, sizeof rate, "%.2f s/it", 1.0 / per_s);
    else snprintf(rate, sizeof rate, "%.2f it/s", per_s);
    char count[48];
    if (total > 0) snprintf(count, sizeof count, "%d/%d", done, total);
    else snprintf(count, sizeof count, "%d", done);
    int len = snprintf(buf, n, "step %s | elapsed %.1fs | %s%s%s", count, elapsed_s, rate,
                       postfix && postfix[0] ? " | " : "", postfix ? postfix : "");
    return len < 0 ? 0 : (size_t)len >= n ? (int)n - 1 : len;
}

/* Terminal width in columns: the tty's, else $COLUMNS, else 80. */
static int terminal_columns(FILE *out) {
    struct winsize ws;
    if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    const char *c = getenv("COLUMNS");
    int v = c ? atoi(c) : 0;
    return v > 0 ? v : 80;
}

static void draw(progress *p) {
    char line[1024];
    /* one column short of the width: writing the last column makes some terminals wrap */
    int cols = progress_format_bar(line, sizeof line, p->desc, p->done, p->initial, p->total, mono_seconds() - p->start,
                                   p->postfix, terminal_columns(p->out) - 1);
    fprintf(p->out, "\r%s", line);
    if (p->drawn_cols > cols) fprintf(p->out, "%*s", p->drawn_cols - cols, "");
    p->drawn_cols = cols;
    fflush(p->out);
}

static void print_line(progress *p) {
    char line[1024];
    progress_format_line(line, sizeof line, p->done, p->initial, p->total, mono_seconds() - p->start, p->postfix);
    fprintf(p->out, "%s\n", line);
    fflush(p->out);
    p->last_logged = p->done;
}

void progress_start(progress *p, const char *desc, int total, FILE *out) {
    if (!p || !out) {
        fprintf(stderr, "%s:%d: progress_start: NULL argument\n", __FILE__, __LINE__);
        abort();
    }
    memset(p, 0, sizeof *p);
    p->desc = desc;
    p->total = total;
    p->out = out;
    p->tty = isatty(fileno(out));
    p->log_every = 1;
    p->last_logged = -1;
    p->start = mono_seconds();
}

void progress_update(progress *p, int done, const char *postfix) {
    p->done = done;
    snprintf(p->postfix, sizeof p->postfix, "%s", postfix ? postfix : "");
    if (p->tty) {
        draw(p);
        return;
    }
    int every = p->log_every > 0 ? p->log_every : 1;
    if (done != p->last_logged && (done % every == 0 || done == p->total)) print_line(p);
}

void progress_clear(progress *p) {
    if (!p->tty || !p->drawn_cols) return;
    fprintf(p->out, "\r%*s\r", p->drawn_cols, "");
    p->drawn_cols = 0;
    fflush(p->out);
}

void progress_finish(progress *p) {
    if (p->tty) {
        draw(p);
        fputc('\n', p->out);
        p->drawn_cols = 0;
        fflush(p->out);
    } else if (p->done > p->initial && p->done != p->last_logged) {
        print_line(p);
    }
}
