/*
 * tests/rewards/test_hostile.c: the hostile-strategy suite of issue 3. One small strategy file per
 * attack (tests/rewards/strategies/), each with the outcome the sandbox promises, run two ways:
 *
 *   1. through the reward pool (2 workers, 0.5 s per game, 64 MiB per game): each attack alone, then
 *      an ordinary job whose result must equal the one it had before any attack (the pool still works
 *      and nothing leaked into it), then a look at /proc: only the zygote, the workers and their
 *      checkers carry this test's marker (no job process left, none escaped, no zombie);
 *   2. through the grpo2048 binary (`grpo2048 play --strategy FILE`, GRPO2048_BIN), two at a time: the
 *      JSON line must say the same, stdout must hold that one line only, and once the binary exited no
 *      process may remain.
 * Each attack must end with its stated outcome and error, within the game's time limit plus 0.3 s
 * measured from the job's own start, and score as a failure: strategy_succeeds < 0 for every error
 * outcome; the attacks that only try to cheat (mutating the board, flooding stdout) must play an honest
 * game that is not a win. Also: a strategy that monkey-patches builtins, random, math, ast and the
 * import machinery cannot affect the next job on the same worker (nor the checker's verdicts), and no
 * file was written. The table is reproduced in docs/sandbox.md.
 *
 * Under AddressSanitizer RLIMIT_AS is off (ASan reserves terabytes of address space), so the attacks
 * that need the memory limit are skipped there, with a message.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/rewards/rewards_testutil.h"
#include "tests/testing.h"

#define A(o) (1u << (o))
#define PLAYS (A(OUTCOME_FAILED) | A(OUTCOME_STUCK))   /* an honest game: failed or stuck, never success */

typedef struct {
    const char *file;
    const char *attack;
    unsigned accept;           /* A(outcome) | ...: the outcomes it may end with */
    const char *error;         /* substring of the game's error (NULL: none expected) */
    int needs_memory_limit;    /* skipped under AddressSanitizer */
} attack;

static const attack attacks[] = {
    /* endless loops */
    {"loop", "while True: pass", A(OUTCOME_TIMEOUT), "(killed)", 0},
    {"catch_all_loop", "endless loop that catches every exception (BaseException)", A(OUTCOME_TIMEOUT), "(killed)", 0},
    {"ignore_alarm", "ignores SIGALRM/SIGXCPU/SIGTERM..., cancels alarms and itimers, loops", A(OUTCOME_TIMEOUT), "(killed)", 0},
    {"sleeper", "time.sleep(60)", A(OUTCOME_TIMEOUT), "(killed)", 0},
    {"clock_spin", "busy loop on time.monotonic() for 60 s", A(OUTCOME_TIMEOUT), "(killed)", 0},
    {"close_and_loop", "closes every fd (the result pipe too), then loops", A(OUTCOME_TIMEOUT), "timeout", 0},
    /* memory */
    {"grow_list", "a list that grows forever", A(OUTCOME_MEMORY), "MemoryError", 1},
    {"catch_memory", "allocates forever, swallowing MemoryError", A(OUTCOME_TIMEOUT), "(killed)", 1},
    {"memory_hog", "one 1 GiB string", A(OUTCOME_MEMORY), "MemoryError", 1},
    {"big_power", "10**10**8", A(OUTCOME_TIMEOUT) | A(OUTCOME_MEMORY), NULL, 0},
    {"deep_recursion", "unbounded recursion", A(OUTCOME_EXCEPTION), "RecursionError", 0},
    /* Python 3.11 keeps Python frames on the heap: they pile up until memory or the clock runs out
     * (CPython then raises MemoryError, or SystemError when the frame stack itself cannot grow). */
    {"deep_recursion_unlimited", "unbounded recursion after sys.setrecursionlimit(10**9)",
     A(OUTCOME_TIMEOUT) | A(OUTCOME_MEMORY) | A(OUTCOME_EXCEPTION), NULL, 1},
    /* processes */
    {"fork", "os.fork() in a loop", A(OUTCOME_CRASH), "signal 31", 0},
    {"subprocess_run", "subprocess.run([\"/bin/sh\", ...])", A(OUTCOME_EXCEPTION), "No module named 'subprocess'", 0},
    {"posixsubprocess", "_posixsubprocess.fork_exec (subprocess's built-in engine)", A(OUTCOME_CRASH), "signal 31", 0},
    {"os_system", "os.system(\"...\")", A(OUTCOME_CRASH), "signal 31", 0},
    {"os_exec", "os.execv(\"/bin/sh\", ...)", A(OUTCOME_CRASH), "signal 31", 0},
    {"thread", "_thread.start_new_thread", A(OUTCOME_CRASH), "signal 31", 0},
    {"threading_thread", "threading.Thread(...).start()", A(OUTCOME_EXCEPTION), "No module named 'threading'", 0},
    {"multiprocessing_pool", "multiprocessing.Pool(4)", A(OUTCOME_EXCEPTION), "No module named 'multiprocessing'", 0},
    /* the outside world */
    {"open_passwd", "open(\"/etc/passwd\").read()", A(OUTCOME_EXCEPTION), "PermissionError", 0},
    {"open_write", "open(\"/tmp/grpo2048_pwned\", \"w\")", A(OUTCOME_EXCEPTION), "PermissionError", 0},
    {"list_dirs", "os.listdir(\"/\")", A(OUTCOME_EXCEPTION), "PermissionError", 0},
    {"read_proc", "open(\"/proc/self/environ\"), /proc/1/cmdline", A(OUTCOME_EXCEPTION), "PermissionError", 0},
    {"socket_connect", "socket + connect to 127.0.0.1:80", A(OUTCOME_CRASH), "signal 31", 0},
    {"ctypes_call", "ctypes.CDLL(None).system(...)", A(OUTCOME_EXCEPTION), "No module named 'ctypes'", 0},
    {"import_json", "import of a module that is not preloaded", A(OUTCOME_EXCEPTION), "No module named 'json'", 0},
    /* the trainer */
    {"kill_parent", "os.kill(os.getppid(), 9)", A(OUTCOME_CRASH), "signal 31", 0},
    {"killpg", "os.killpg(0, 9), os.killpg(parent, 9)", A(OUTCOME_CRASH), "signal 31", 0},
    {"kill_init", "os.kill(1, 9)", A(OUTCOME_CRASH), "signal 31", 0},
    {"kill_all", "os.kill(-1, 9)", A(OUTCOME_CRASH), "signal 31", 0},
    {"self_signal", "signals to itself (allowed, harmless)", PLAYS, NULL, 0},
    /* reward hacking */
    {"sys_exit", "sys.exit(0)", A(OUTCOME_EXCEPTION), "SystemExit", 0},
    {"raise_systemexit", "raise SystemExit", A(OUTCOME_EXCEPTION), "SystemExit", 0},
    {"exit_early", "os._exit(0)", A(OUTCOME_CRASH), "before reporting its result", 0},
    {"forge_result", "writes fake result bytes to every fd", A(OUTCOME_CRASH), "crash: ", 0},
    {"return_early", "returns \"\" to stop the game while ahead", A(OUTCOME_INVALID_MOVE), "returned ''", 0},
    {"mutate_board", "writes 2048s into (and grows) the board argument", PLAYS, NULL, 0},
    {"monkeypatch", "poisons builtins, random, math, ast, __import__ for later jobs", A(OUTCOME_STUCK), "stuck", 0},
    {"print_flood", "megabytes to stdout and stderr (print and os.write)", PLAYS, NULL, 0},
    {"chatty", "prints every board", PLAYS, NULL, 0},
    {"huge_string", "returns a 16 MiB string starting with W", A(OUTCOME_INVALID_MOVE), "WWWW...", 0},
    {"invalid_none", "returns None", A(OUTCOME_INVALID_MOVE), "returned None", 0},
    {"invalid_int", "returns a number (5)", A(OUTCOME_INVALID_MOVE), "returned 5", 0},
    {"invalid_list", "returns a list ([\"W\"])", A(OUTCOME_INVALID_MOVE), "returned a list", 0},
    {"invalid_x", "returns \"X\"", A(OUTCOME_INVALID_MOVE), "returned 'X'", 0},
    /* issue 15: one per class of attack that got through before the worker owned the game. Those that
     * play honestly once the attack failed return "X" (or "Y": the attack itself no longer works) when
     * it succeeded, which the table refuses. */
    {"memory_forge", "raw memory access (code.replace, LOAD_CONST past the constants): reads, writes, "
     "scans its pools for the game seeds", PLAYS, NULL, 0},
    {"fcntl_signal", "F_SETOWN(parent) + F_SETSIG(SIGKILL) + O_ASYNC, F_SETOWN_EX, F_NOTIFY, F_SETLEASE, "
     "F_SETPIPE_SZ on its fds", PLAYS, NULL, 0},
    {"seed_profile", "sys.setprofile at definition time, watching random.seed for the game seed", PLAYS, NULL, 0},
    {"env_read", "reads os.environ / posix.environ for the trainer's variables (a planted canary)", PLAYS, NULL, 0},
    {"sigxcpu_self", "sends itself SIGXCPU to pass as a CPU-limit timeout", A(OUTCOME_CRASH), "sent by the strategy", 0},
    {"log_inject", "exception text with a forged JSON line and terminal escapes (ESC, BEL, C1, bidi)",
     A(OUTCOME_EXCEPTION), "RuntimeError: \\n{\"game\"", 0},
};
enum { N_ATTACKS = sizeof attacks / sizeof *attacks };

#define TIMEOUT 0.5
#define MEMORY_MIB 64
#define SEED 7
/* Seconds a `grpo2048 play` process on an attack may take beyond the game's limit and beyond the
 * start-up and teardown of one on an honest strategy (issue 15: timeout + 1 s). */
#define PLAY_SLACK 1.0

static int skipped(const attack *a) {
#ifdef GRPO2048_SANITIZE
    if (a->needs_memory_limit) return 1;
#endif
    (void)a;
    return 0;
}

/* The accepted outcomes as text ("timeout or memory"). */
static const char *accepted(unsigned accept, char *buf, size_t n) {
    buf[0] = '\0';
    for (int o = 0; o < OUTCOME_COUNT; o++)
        if (accept & A(o)) snprintf(buf + strlen(buf), n - strlen(buf), "%s%s", buf[0] ? " or " : "",
                                    reward_outcome_name((reward_outcome)o));
    return buf;
}

/* Checks an outcome, its error and its rewards against the table. */
static void check_outcome(const attack *a, const char *how, int outcome, const char *error, double seconds,
                          const reward_result *r) {
    char want[128];
    int ok = outcome >= 0 && outcome < OUTCOME_COUNT && (a->accept & A(outcome));
    CHECK_MSG(ok, "%s (%s): %s, expected %s (%s)", a->file, how, outcome >= 0 && outcome < OUTCOME_COUNT ?
              reward_outcome_name((reward_outcome)outcome) : "?", accepted(a->accept, want, sizeof want), error);
    if (a->error)
        CHECK_MSG(strstr(error, a->error) != NULL, "%s (%s): error [%s] lacks [%s]", a->file, how, error, a->error);
    else if (outcome == OUTCOME_FAILED)
        CHECK_MSG(error[0] == '\0', "%s (%s): unexpected error [%s]", a->file, how, error);
    /* The limit held: a game the worker did not stop would last until the strategy's own end (a sleep of 60 s,
     * an endless loop) or the trainer's WORKER_SLACK (10 s). 1.5 s of slack keeps that clear while a machine
     * loaded to 5x its cores delays the kill (1.06 s measured at load 10 with the old 0.3 s bound). */
    CHECK_MSG(seconds < TIMEOUT + 1.5, "%s (%s): ended after %.3f s", a->file, how, seconds);
    /* Whatever the strategy put in its message is stored escaped: no control byte, no line break. */
    for (const unsigned char *c = (const unsigned char *)error; *c; c++)
        CHECK_MSG(*c >= 0x20 && *c != 0x7f, "%s (%s): control byte 0x%02x in the error [%s]", a->file, how, *c, error);
    if (r) {
        CHECK_MSG(r->outcome != OUTCOME_SUCCESS && r->wins == 0, "%s scored a win", a->file);
        if (outcome == OUTCOME_FAILED || outcome == OUTCOME_STUCK)
            CHECK_MSG(r->rewards[RF_STRATEGY_SUCCEEDS] <= 2.0 && r->max_tile < 2048, "%s: %g, max tile %u", a->file,
                      r->rewards[RF_STRATEGY_SUCCEEDS], r->max_tile);
        else
            CHECK_MSG(r->rewards[RF_STRATEGY_SUCCEEDS] < 0 && r->rewards[RF_GAME_PROGRESS] == 0,
                      "%s: strategy_succeeds %g, game_progress %g", a->file, r->rewards[RF_STRATEGY_SUCCEEDS],
                      r->rewards[RF_GAME_PROGRESS]);
        /* Standard-library imports are not cheating, even when the sandbox refuses them. */
        CHECK_MSG(r->rewards[RF_NO_CHEATING] == 1.0, "%s: no_cheating %g", a->file, r->rewards[RF_NO_CHEATING]);
    }
}

static reward_pool *hostile_pool(int workers) {
    reward_config c;
    reward_config_defaults(&c);
    c.workers = workers;
    c.timeout = TIMEOUT;
    c.memory_limit = (size_t)MEMORY_MIB << 20;
    char err[256];
    reward_pool *p = reward_pool_create(&c, err, sizeof err);
    if (!p) { fprintf(stderr, "reward_pool_create: %s\n", err); abort(); }
    return p;
}

static reward_result score1(reward_pool *p, const char *src) {
    uint64_t seed = SEED;
    reward_result r;
    char err[256];
    if (reward_pool_score_sources(p, 1, &src, &seed, &r, NULL, err, sizeof err) != 0) {
        fprintf(stderr, "reward_pool_score_sources: %s\n", err);
        abort();
    }
    return r;
}

static int same_game(const reward_result *a, const reward_result *b) {
    return a->outcome == b->outcome && a->moves == b->moves && a->score == b->score && a->max_tile == b->max_tile &&
           a->reward == b->reward;
}

/* 1. Every attack through the pool, each followed by an ordinary job and a look at the processes. */
static void pool_pass(void) {
    reward_pool *p = hostile_pool(2);
    char *plain = tu_strategy("random_moves");
    reward_result ref = score1(p, plain);
    CHECK_EQ_INT(ref.outcome, OUTCOME_FAILED);
    int fds_before = tu_fd_count(getpid());
    char why[256];
    double t0 = tu_now();
    for (int i = 0; i < N_ATTACKS; i++) {
        const attack *a = &attacks[i];
        if (skipped(a)) {
            printf("%-26s skipped: needs RLIMIT_AS, which is off under AddressSanitizer\n", a->file);
            continue;
        }
        char *src = tu_strategy(a->file);
        reward_result r = score1(p, src);
        printf("%-26s %-12s %.3f s  %s\n", a->file, reward_outcome_name(r.outcome), r.seconds, r.error);
        check_outcome(a, "pool", r.outcome, r.error, r.seconds, &r);
        reward_result after = score1(p, plain);
        CHECK_MSG(same_game(&after, &ref), "after %s the ordinary job gave %s, %d moves (before: %s, %d moves)",
                  a->file, reward_outcome_name(after.outcome), after.moves, reward_outcome_name(ref.outcome), ref.moves);
        CHECK_MSG(tu_pool_clean(p, 2.0, why, sizeof why), "after %s: %s", a->file, why);
        free(src);
    }
    CHECK_EQ_INT(tu_fd_count(getpid()), fds_before);
    struct stat st;
    CHECK_MSG(stat("/tmp/grpo2048_pwned", &st) != 0, "a strategy wrote /tmp/grpo2048_pwned");
    printf("pool pass: %d attacks in %.2f s\n", N_ATTACKS, tu_now() - t0);
    free(plain);
    reward_pool_destroy(p);
}

/* The trainer's path: every attack as a model completion (a fenced block) in ONE batch, scored in
 * parallel by reward_pool_score as a training step does; each result as in the table, the pool clean. */
static void training_step_pass(void) {
    reward_pool *p = hostile_pool(2);
    const char *texts[N_ATTACKS];
    char *owned[N_ATTACKS];
    uint64_t seeds[N_ATTACKS];
    reward_result r[N_ATTACKS];
    int n = 0, which[N_ATTACKS];
    for (int i = 0; i < N_ATTACKS; i++) {
        if (skipped(&attacks[i])) continue;
        char *src = tu_strategy(attacks[i].file);
        if (strncmp(src, "def strategy(board):", 20) != 0) {
            /* seed_profile's annotated parameter: the extraction already refuses such a completion
             * (no_function), so only the pass above can run it */
            free(src);
            continue;
        }
        size_t len = strlen(src) + 64;
        owned[n] = malloc(len);
        snprintf(owned[n], len, "Here is my strategy:\n```python\n%s\n```\n", src);
        free(src);
        texts[n] = owned[n];
        seeds[n] = SEED;
        which[n++] = i;
    }
    char err[256];
    double t0 = tu_now();
    CHECK_EQ_INT(reward_pool_score(p, n, texts, seeds, r, NULL, err, sizeof err), 0);
    for (int k = 0; k < n; k++) {
        const attack *a = &attacks[which[k]];
        check_outcome(a, "training step", r[k].outcome, r[k].error, r[k].seconds, &r[k]);
        free(owned[k]);
    }
    char why[256];
    CHECK_MSG(tu_pool_clean(p, 2.0, why, sizeof why), "after the batch: %s", why);
    printf("training-step pass: %d attacks in one batch in %.2f s\n", n, tu_now() - t0);
    reward_pool_destroy(p);
}

/* Monkey-patching in one job reaches neither the next job on the same worker nor the checker. */
static void monkeypatch_isolation(void) {
    char *probe = tu_strategy("monkeypatch_probe"), *patch = tu_strategy("monkeypatch"),
         *banned = tu_strategy("banned_numpy");
    reward_pool *p = hostile_pool(1);
    reward_result fresh = score1(p, probe);
    CHECK_MSG(fresh.outcome == OUTCOME_FAILED, "the probe in a fresh pool: %s %s", reward_outcome_name(fresh.outcome),
              fresh.error);
    /* One worker: the jobs run one after the other on it. */
    const char *batch[4] = {patch, probe, banned, probe};
    uint64_t seeds[4] = {SEED, SEED, SEED, SEED};
    reward_result r[4];
    char err[256];
    CHECK_EQ_INT(reward_pool_score_sources(p, 4, batch, seeds, r, NULL, err, sizeof err), 0);
    CHECK_EQ_INT(r[0].outcome, OUTCOME_STUCK);
    CHECK_MSG(same_game(&r[1], &fresh), "the probe after the patch: %s %s", reward_outcome_name(r[1].outcome), r[1].error);
    CHECK_MSG(r[2].outcome == OUTCOME_BANNED_IMPORT, "banned import after the patch: %s", reward_outcome_name(r[2].outcome));
    CHECK(same_game(&r[3], &fresh));
    reward_pool_destroy(p);
    free(probe);
    free(patch);
    free(banned);
}

/* Reads a whole file (NUL-terminated, malloc'd). */
static char *slurp_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    size_t r;
    while ((r = fread(b + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n + 1 == cap) b = realloc(b, cap *= 2);
    }
    fclose(f);
    b[n] = '\0';
    if (len) *len = n;
    return b;
}

/* Wall seconds of two `grpo2048 play` processes on a quick, honest strategy started together (the
 * slower one): the start-up and teardown that every play process of binary_pass pays on this machine
 * at its present load. */
static double play_startup(const char *bin) {
    char strat[1024];
    tu_strategy_path("random_moves", strat, sizeof strat);
    double t0 = tu_now();
    pid_t pids[2];
    for (int k = 0; k < 2; k++) {
        pids[k] = fork();
        if (pids[k] == 0) {
            int null = open("/dev/null", O_WRONLY);
            if (null < 0 || dup2(null, 1) < 0) _exit(120);
            execl(bin, bin, "play", "--strategy", strat, "--seed", "7", (char *)NULL);
            _exit(121);
        }
    }
    for (int k = 0; k < 2; k++) waitpid(pids[k], NULL, 0);
    return tu_now() - t0;
}

/* Starts `grpo2048 play` on the attack strat with the test's limits, stdout to out and stderr to err (NULL:
 * inherited); returns the pid (-1 when fork fails). */
static pid_t spawn_play(const char *bin, const char *strat, const char *out, const char *err) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600), e = err ? open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600) : 2;
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0) _exit(120);
        char t[32], m[32];
        snprintf(t, sizeof t, "%g", TIMEOUT);
        snprintf(m, sizeof m, "%d", MEMORY_MIB);
        execl(bin, bin, "play", "--strategy", strat, "--timeout", t, "--memory", m, "--seed", "7", (char *)NULL);
        _exit(121);
    }
    return pid;
}

/* 2. Every attack through `grpo2048 play`, two processes at a time. */
static void binary_pass(const char *bin) {
    char dir[] = "/tmp/grpo2048_hostile_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    double startup = 0;
    for (int k = 0; k < 3; k++) {
        double s = play_startup(bin);
        if (s > startup) startup = s;
    }
    printf("grpo2048 play start-up and teardown, two at a time: %.2f s (the slowest of 3)\n", startup);
    double t0 = tu_now();
    pid_t running[2] = {0, 0};
    int slot_of[2] = {-1, -1};
    double started_at[2] = {0, 0}, slowest = 0;
    const char *slowest_file = "";
    int late[N_ATTACKS], n_late = 0;   /* attacks over the time limit in this pass */
    for (int i = 0, started = 0; i < N_ATTACKS || running[0] || running[1];) {
        int free_slot = !running[0] ? 0 : !running[1] ? 1 : -1;
        if (i < N_ATTACKS && free_slot >= 0) {
            if (skipped(&attacks[i])) { i++; continue; }
            char strat[1024], out[1100], errp[1100];
            tu_strategy_path(attacks[i].file, strat, sizeof strat);
            snprintf(out, sizeof out, "%s/%d.out", dir, i);
            snprintf(errp, sizeof errp, "%s/%d.err", dir, i);
            pid_t pid = spawn_play(bin, strat, out, errp);
            CHECK(pid > 0);
            running[free_slot] = pid;
            started_at[free_slot] = tu_now();
            slot_of[free_slot] = i++;
            started++;
            continue;
        }
        int st;
        pid_t done = wait(&st);
        if (done < 0 && errno == EINTR) continue;
        int s = done == running[0] ? 0 : done == running[1] ? 1 : -1;
        if (s < 0) continue;
        running[s] = 0;
        const attack *a = &attacks[slot_of[s]];
        CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "grpo2048 play %s: status %d", a->file, st);
        /* The whole process ends within the game's limit + 1 s beyond what an honest strategy's play
         * process takes to start and tear down here. */
        double wall = tu_now() - started_at[s];
        if (wall - startup > slowest) { slowest = wall - startup; slowest_file = a->file; }
        if (wall >= startup + TIMEOUT + PLAY_SLACK && n_late < N_ATTACKS) late[n_late++] = slot_of[s];
        char path[1100];
        snprintf(path, sizeof path, "%s/%d.out", dir, slot_of[s]);
        size_t n = 0;
        char *text = slurp_file(path, &n);
        CHECK_MSG(text && n > 0 && strchr(text, '\n') == text + n - 1, "%s: stdout is not one line (%zu bytes)",
                  a->file, n);
        cJSON *j = text ? cJSON_Parse(text) : NULL;
        CHECK_MSG(j != NULL, "%s: not JSON: %.200s", a->file, text ? text : "");
        if (j) {
            cJSON *state = cJSON_GetObjectItemCaseSensitive(j, "state");
            cJSON *error = cJSON_GetObjectItemCaseSensitive(j, "error");
            cJSON *secs = cJSON_GetObjectItemCaseSensitive(j, "seconds");
            int outcome = cJSON_IsString(state) ? reward_outcome_from_name(state->valuestring) : -1;
            const char *e = cJSON_IsString(error) ? error->valuestring : "";
            check_outcome(a, "grpo2048 play", outcome, e, cJSON_IsNumber(secs) ? secs->valuedouble : 99.0, NULL);
            cJSON_Delete(j);
        }
        free(text);
        snprintf(path, sizeof path, "%s/%d.err", dir, slot_of[s]);
        char *err = slurp_file(path, &n);
        CHECK_MSG(err && n == 0, "%s: grpo2048 play wrote to stderr: %.200s", a->file, err ? err : "");
        free(err);
        unlink(path);
        snprintf(path, sizeof path, "%s/%d.out", dir, slot_of[s]);
        unlink(path);
    }
    rmdir(dir);
    /* Over the limit: timed again alone, against a start-up measured right before, so that a burst of load
     * from other processes (the machine runs other tests at the same time) does not count; an attack that
     * really keeps its play process alive is over the limit both times. */
    for (int k = 0; k < n_late; k++) {
        const attack *a = &attacks[late[k]];
        char strat[1024];
        tu_strategy_path(a->file, strat, sizeof strat);
        double st0 = play_startup(bin), w0 = tu_now();
        pid_t pid = spawn_play(bin, strat, "/dev/null", NULL);
        CHECK(pid > 0);
        waitpid(pid, NULL, 0);
        double wall = tu_now() - w0;
        printf("grpo2048 play %s: over the limit among the others, %.2f s alone (start-up %.2f s)\n", a->file, wall, st0);
        CHECK_MSG(wall < st0 + TIMEOUT + PLAY_SLACK, "grpo2048 play %s took %.2f s alone (limit %.2f s start-up + %.1f + %.1f s)",
                  a->file, wall, st0, TIMEOUT, PLAY_SLACK);
    }
    /* Every play process exited: none of their zygotes, workers, checkers or job children may remain. */
    int left = tu_wait_unmarked(tu_mark, 3.0);
    CHECK_MSG(left == 0, "%d processes of grpo2048 play remain", left);
    printf("binary pass: %d attacks through %s in %.2f s (slowest beyond start-up: %s, %.2f s)\n", N_ATTACKS, bin,
           tu_now() - t0, slowest_file, slowest);
}

/* Sequential mode prints each completion's source and outcome: a strategy's text (its source, its
 * exception message) must come out escaped — no terminal escape, no line of its making. */
static void sequential_log_escaped(void) {
    reward_config c;
    reward_config_defaults(&c);
    c.parallel = 0;
    c.timeout = TIMEOUT;
    char err[256];
    reward_pool *p = reward_pool_create(&c, err, sizeof err);
    CHECK_MSG(p != NULL, "reward_pool_create: %s", err);
    if (!p) return;
    char *src = tu_strategy("log_inject");
    FILE *log = tmpfile();
    CHECK(log != NULL);
    uint64_t seed = SEED;
    reward_result r;
    const char *srcs[1] = {src};
    CHECK_EQ_INT(reward_pool_score_sources(p, 1, srcs, &seed, &r, log, err, sizeof err), 0);
    CHECK_EQ_INT(r.outcome, OUTCOME_EXCEPTION);
    long n = ftell(log);
    char *text = calloc((size_t)n + 1, 1);
    rewind(log);
    CHECK(fread(text, 1, (size_t)n, log) == (size_t)n);
    int ctl = 0;
    for (long i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)text[i];
        if ((ch < 0x20 && ch != '\n') || ch == 0x7f) ctl++;
    }
    CHECK_MSG(ctl == 0, "the sequential log holds %d control bytes:\n%s", ctl, text);
    CHECK_MSG(strstr(text, "\n{\"game\"") == NULL, "a forged JSON line starts a line of the log:\n%s", text);
    CHECK_MSG(strstr(text, "\\x1b[2J") != NULL, "the escaped ESC is not in the log:\n%s", text);
    free(text);
    fclose(log);
    free(src);
    reward_pool_destroy(p);
}

int main(int argc, char **argv) {
    (void)argc;
    tu_mark_self(argv);
    /* A secret in the trainer's environment, which no strategy may read (env_read.py). */
    setenv("GRPO2048_SECRET_CANARY", "hunter2", 1);
    unlink("/tmp/grpo2048_pwned");
    double t0 = tu_now();
    pool_pass();
    training_step_pass();
    monkeypatch_isolation();
    sequential_log_escaped();
    CHECK_MSG(tu_wait_unmarked(tu_mark, 3.0) == 0, "processes remain after the pools were destroyed");
    const char *bin = getenv("GRPO2048_BIN");
    struct stat sb;
    if (bin && stat(bin, &sb) == 0 && (sb.st_mode & S_IXUSR))
        binary_pass(bin);
    else
        printf("GRPO2048_BIN not set or not built: skipping the pass through grpo2048 play\n");
    struct stat st;
    CHECK_MSG(stat("/tmp/grpo2048_pwned", &st) != 0, "a strategy wrote /tmp/grpo2048_pwned");
    printf("test_hostile: %.2f s\n", tu_now() - t0);
    return TEST_DONE();
}
