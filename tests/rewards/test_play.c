/*
 * tests/rewards/test_play.c: the `play` subcommand (cmd_play) — one JSON line per game with the
 * documented fields, raw Python and fenced completions both accepted, --max-stuck-moves and --memory
 * passed to the sandbox, a failing strategy still exits 0,
 * usage and file errors exit 2 and 1 with a message. cmd_play runs in a forked child whose stdout and
 * stderr are captured. When GRPO2048_BIN names a built grpo2048, `grpo2048 play` is run through it too.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/rewards/rewards_testutil.h"
#include "tests/testing.h"

static char out_buf[1 << 16], err_buf[1 << 14];

/* Reads fd to EOF into buf (NUL-terminated). */
static void slurp(int fd, char *buf, size_t n) {
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, buf + got, n - 1 - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    buf[got] = '\0';
}

/* Runs cmd_play(argv) in a child; returns its exit status, output in out_buf / err_buf. */
static int run_play(const char *const *argv) {
    int argc = 0;
    while (argv[argc]) argc++;
    int o[2], e[2];
    if (pipe(o) || pipe(e)) abort();
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(o[1], 1);
        dup2(e[1], 2);
        close(o[0]); close(e[0]); close(o[1]); close(e[1]);
        int rc = cmd_play(argc, (char **)argv);
        fflush(stdout);
        fflush(stderr);
        _exit(rc);
    }
    close(o[1]);
    close(e[1]);
    slurp(o[0], out_buf, sizeof out_buf);   /* small outputs: reading one pipe after the other is fine */
    slurp(e[0], err_buf, sizeof err_buf);
    close(o[0]);
    close(e[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char last_line[4096];   /* the text of the line line_json parsed last */

/* Parses JSON line `line` (0-based) of out_buf; NULL when missing or not JSON. */
static cJSON *line_json(int line) {
    const char *s = out_buf;
    for (int i = 0; i < line && s; i++) {
        s = strchr(s, '\n');
        if (s) s++;
    }
    if (!s || !*s) return NULL;
    const char *nl = strchr(s, '\n');
    size_t n = nl ? (size_t)(nl - s) : strlen(s);
    snprintf(last_line, sizeof last_line, "%.*s", (int)n, s);
    return cJSON_Parse(last_line);
}

static int count_lines(void) {
    int n = 0;
    for (const char *s = out_buf; *s; s++) n += *s == '\n';
    return n;
}

/* Checks one game line's fields (the seed in the text: cJSON reads numbers as doubles); returns the
 * state (owned by j). */
static const char *check_line(cJSON *j, int game, const char *seed) {
    CHECK(j != NULL);
    if (!j) return "";
    const char *keys[] = {"game", "seed", "state", "score", "max_tile", "moves", "seconds", "error"};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
        CHECK_MSG(cJSON_GetObjectItemCaseSensitive(j, keys[k]) != NULL, "line lacks \"%s\"", keys[k]);
    CHECK_EQ_INT(cJSON_GetObjectItemCaseSensitive(j, "game")->valuedouble, game);
    char want[64];
    snprintf(want, sizeof want, "\"seed\":%s,", seed);
    CHECK_MSG(strstr(last_line, want) != NULL, "line [%s] lacks [%s]", last_line, want);
    cJSON *state = cJSON_GetObjectItemCaseSensitive(j, "state");
    CHECK(cJSON_IsString(state) && reward_outcome_from_name(state->valuestring) >= 0);
    CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "seconds")));
    return cJSON_IsString(state) ? state->valuestring : "";
}

int main(void) {
    char corner[1024], syntax[1024];
    tu_strategy_path("corner", corner, sizeof corner);
    tu_strategy_path("syntax_error", syntax, sizeof syntax);

    /* Raw Python, three games on a small target: all succeed, fields and seed as documented. */
    const char *a1[] = {"play", "--strategy", corner, "--games", "3", "--seed", "18446744073709551615", "--target",
                        "64", NULL};
    CHECK_EQ_INT(run_play(a1), 0);
    CHECK_EQ_INT(count_lines(), 3);
    for (int g = 0; g < 3; g++) {
        cJSON *j = line_json(g);
        CHECK(!strcmp(check_line(j, g, "18446744073709551615"), "success"));
        if (j) {
            CHECK(cJSON_GetObjectItemCaseSensitive(j, "max_tile")->valuedouble >= 64);
            CHECK(cJSON_GetObjectItemCaseSensitive(j, "moves")->valuedouble > 0);
            CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "error")));
        }
        cJSON_Delete(j);
    }

    /* A completion with a fenced block, --opt=value spelling, a 3×3 board. */
    char tmp[] = "/tmp/grpo2048_play_XXXXXX";
    int fd = mkstemp(tmp);
    CHECK(fd >= 0);
    char *comp = tu_completion("random_moves");
    CHECK_EQ_INT(write(fd, comp, strlen(comp)), (long)strlen(comp));
    close(fd);
    char sarg[1100];
    snprintf(sarg, sizeof sarg, "--strategy=%s", tmp);
    const char *a2[] = {"play", sarg, "--size=3", "--timeout=0.5", NULL};
    CHECK_EQ_INT(run_play(a2), 0);
    CHECK_EQ_INT(count_lines(), 1);
    cJSON *j = line_json(0);
    CHECK(!strcmp(check_line(j, 0, "0"), "failed"));
    cJSON_Delete(j);

    /* A broken strategy still exits 0: its state and error say what happened. */
    const char *a3[] = {"play", "--strategy", syntax, "--games", "2", NULL};
    CHECK_EQ_INT(run_play(a3), 0);
    CHECK_EQ_INT(count_lines(), 2);
    j = line_json(1);
    CHECK(!strcmp(check_line(j, 1, "0"), "syntax_error"));
    cJSON *e = j ? cJSON_GetObjectItemCaseSensitive(j, "error") : NULL;
    CHECK(cJSON_IsString(e) && strstr(e->valuestring, "syntax error"));
    cJSON_Delete(j);

    /* --max-stuck-moves and --memory reach the sandbox. */
    char always_w[1024];
    tu_strategy_path("always_w", always_w, sizeof always_w);
    const char *a4[] = {"play", "--strategy", always_w, "--max-stuck-moves", "7", "--memory", "64", NULL};
    CHECK_EQ_INT(run_play(a4), 0);
    j = line_json(0);
    CHECK(!strcmp(check_line(j, 0, "0"), "stuck"));
    e = j ? cJSON_GetObjectItemCaseSensitive(j, "error") : NULL;
    CHECK_MSG(cJSON_IsString(e) && strstr(e->valuestring, "did not change for 7 moves"), "[%s]", last_line);
    cJSON_Delete(j);

    /* Usage errors: 2 with a message; file errors: 1. */
    const char *bad[][8] = {
        {"play", NULL},
        {"play", "--strategy", corner, "--games", "0", NULL},
        {"play", "--strategy", corner, "--target", "1000", NULL},
        {"play", "--strategy", corner, "--size", "9", NULL},
        {"play", "--strategy", corner, "--timeout", "-1", NULL},
        {"play", "--strategy", corner, "--seed", "-3", NULL},
        {"play", "--strategy", corner, "--frobnicate", NULL},
        {"play", "--strategy", corner, "--memory", "8", NULL},
        {"play", "--strategy", corner, "--max-stuck-moves", "0", NULL},
        {"play", "--strategy", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK_MSG(run_play(bad[i]) == 2, "usage case %zu", i);
        CHECK_MSG(strstr(err_buf, "grpo2048 play") != NULL, "usage case %zu: [%s]", i, err_buf);
        CHECK_EQ_INT(count_lines(), 0);
    }
    const char *missing[] = {"play", "--strategy", "/nonexistent/strategy.py", NULL};
    CHECK_EQ_INT(run_play(missing), 1);
    CHECK(strstr(err_buf, "/nonexistent/strategy.py") != NULL);
    const char *help[] = {"play", "--help", NULL};
    CHECK_EQ_INT(run_play(help), 0);
    CHECK(strstr(out_buf, "--strategy FILE") != NULL);

    /* Through the real binary, when it is built (the lead wires `play` into trainer/main.c). */
    const char *bin = getenv("GRPO2048_BIN");
    struct stat sb;
    if (bin && stat(bin, &sb) == 0 && (sb.st_mode & S_IXUSR)) {
        char cmd[2600];
        snprintf(cmd, sizeof cmd, "'%s' play --strategy '%s' --target 32 --seed 7 2>&1", bin, corner);
        FILE *f = popen(cmd, "r");
        CHECK(f != NULL);
        if (f) {
            size_t n = fread(out_buf, 1, sizeof out_buf - 1, f);
            out_buf[n] = '\0';
            CHECK_EQ_INT(pclose(f), 0);
            j = line_json(0);
            CHECK_MSG(j && !strcmp(check_line(j, 0, "7"), "success"), "grpo2048 play said [%s]", out_buf);
            cJSON_Delete(j);
        }
    } else {
        printf("GRPO2048_BIN not set or not built: skipping the binary check\n");
    }
    unlink(tmp);
    free(comp);
    return TEST_DONE();
}
