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

/* Appends src to the string at dst (n bytes in all). */
static void append(char *dst, size_t n, const char *src) {
    size_t l = strlen(dst);
    if (l + 1 < n) snprintf(dst + l, n - l, "%s", src);
}

/* The parts of a bar line that can be left out, and in which order (see progress.h): */
enum { DROP_BAR = 1, DROP_DESC = 2, DROP_RATE = 4, DROP_REMAINING = 8, DROP_PCT = 16, DROP_TIMES = 32 };

/* Splits postfix at ", " into at most `max` fields (pointers into copy). */
static int split_fields(char *copy, const char **fields, int max) {
    int n = 0;
    char *p = copy;
    while (p && *p && n < max) {
        fields[n++] = p;
        char *sep = strstr(p, ", ");
        if (sep) { *sep = '\0'; p = sep + 2; }
        else p = NULL;
    }
    return n;
}

/* One candidate line: the fields [0, nfields) of the postfix and the parts not in `drop`. */
static void compose(char *buf, size_t n, const char *desc, const char *pct, const char *bar, const char *count,
                    const char *el, const char *rem, const char *rate, const char **fields, int nfields, int drop,
                    int total) {
    buf[0] = '\0';
    if (desc && !(drop & DROP_DESC)) { append(buf, n, desc); append(buf, n, ": "); }
    if (total > 0 && !(drop & DROP_PCT)) {
        const char *p = pct;
        if (!buf[0]) while (*p == ' ') p++;   /* no padding at the start of the line */
        append(buf, n, p);
        if (!(drop & DROP_BAR)) { append(buf, n, "|"); append(buf, n, bar); append(buf, n, "| "); }
        else append(buf, n, " ");
    }
    append(buf, n, count);
    if (drop & DROP_TIMES) return;
    append(buf, n, " [");
    append(buf, n, el);
    if (total > 0 && !(drop & DROP_REMAINING)) { append(buf, n, "<"); append(buf, n, rem); }
    if (!(drop & DROP_RATE)) { append(buf, n, ", "); append(buf, n, rate); }
    for (int i = 0; i < nfields; i++) { append(buf, n, ", "); append(buf, n, fields[i]); }
    append(buf, n, "]");
}

int progress_format_bar(char *buf, size_t n, const char *desc, int done, int initial, int total, double elapsed_s,
                        const char *postfix, int main_fields, int max_cols) {
    static const char *const eighths[9] = {" ", "▏", "▎", "▍", "▌", "▋", "▊", "▉", "█"};
    char el[32], rem[32] = "?", rate[32], pct[16] = "", count[48], bar[10 * 4 + 1] = "";
    format_interval(el, sizeof el, elapsed_s);
    double per_s = done > initial && elapsed_s > 0 ? (done - initial) / elapsed_s : 0;
    if (per_s <= 0) snprintf(rate, sizeof rate, "?it/s");
    else if (per_s < 1) snprintf(rate, sizeof rate, "%5.2fs/it", 1.0 / per_s);
    else snprintf(rate, sizeof rate, "%5.2fit/s", per_s);
    const char *d = desc && desc[0] ? desc : NULL;
    if (total <= 0) {
        snprintf(count, sizeof count, "%dit", done);
    } else {
        snprintf(count, sizeof count, "%d/%d", done, total);
        double frac = done <= 0 ? 0 : done >= total ? 1 : (double)done / total;
        snprintf(pct, sizeof pct, "%3.0f%%", frac * 100);
        if (per_s > 0) format_interval(rem, sizeof rem, (total - (done < total ? done : total)) / per_s);
        /* tqdm: divmod(int(frac * N_BARS * 8), 8) full cells and one partial cell */
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
    }
    char copy[512];
    snprintf(copy, sizeof copy, "%s", postfix ? postfix : "");
    const char *fields[32];
    const int nf = split_fields(copy, fields, 32);
    const int nmain = main_fields < 0 ? 0 : main_fields > nf ? nf : main_fields;
    /* Narrower and narrower candidates until one fits: the extra postfix fields from the last, then the
     * bar, then the description, then the main fields from the last, then the rate, the remaining time, the
     * percentage, the times; the last resort is the bare count, or nothing. Whole fields only: a number
     * is never cut. */
    int nfields = nf, drop = 0;
    for (;;) {
        compose(buf, n, d, pct, bar, count, el, rem, rate, fields, nfields, drop, total);
        if (max_cols <= 0 || columns(buf) <= max_cols) break;
        if (nfields > nmain) nfields--;
        else if (total > 0 && !(drop & DROP_BAR)) drop |= DROP_BAR;
        else if (d && !(drop & DROP_DESC)) drop |= DROP_DESC;
        else if (nfields > 0) nfields--;
        else if (!(drop & DROP_RATE)) drop |= DROP_RATE;
        else if (total > 0 && !(drop & DROP_REMAINING)) drop |= DROP_REMAINING;
        else if (total > 0 && !(drop & DROP_PCT)) drop |= DROP_PCT;
        else if (!(drop & DROP_TIMES)) drop |= DROP_TIMES;
        else { buf[0] = '\0'; break; }
    }
    return columns(buf);
}

double progress_rss_gib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    long size, resident;
    int ok = fscanf(f, "%ld %ld", &size, &resident) == 2;
    fclose(f);
    if (!ok) return -1;
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / 1073741824.0;
}

void progress_format_memory(char *buf, size_t n, double device_used_gib) {
    const double rss = device_used_gib < 0 ? progress_rss_gib() : -1;
    if (device_used_gib >= 0) snprintf(buf, n, "gpu_mem=%.1fG", device_used_gib);
    else if (rss >= 0) snprintf(buf, n, "mem=%.2fG", rss);
    else if (n) buf[0] = '\0';
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
                                   p->postfix, p->main_fields, terminal_columns(p->out) - 1);
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
    p->main_fields = 3;
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
