/*
 * rewards/pool.c: the trainer's side of the reward pool — creating it (zygote + workers), dispatching
 * jobs to idle workers, collecting results in completion order, replacing dead workers, and the
 * sequential debugging mode.
 *
 * A call to reward_pool_score prepares every completion (extraction runs here, in the trainer), turns
 * those without a function into results at once (no job), and sends the others to idle workers — at
 * most `workers` at a time with parallel = 1, one at a time with parallel = 0 (then each completion's
 * source, checks, games and rewards are printed to `log` as it finishes, in order). Results are read
 * with poll() over the busy workers' sockets and turned into rewards by reward_compute. Parallel and
 * sequential runs execute the same jobs with the same seeds, so they give identical rewards (up to
 * timing-dependent outcomes: a strategy near its time limit).
 *
 * Failure handling: a worker whose socket reaches EOF or errors (it was killed, or broke the protocol)
 * is replaced by a fresh fork of the zygote, and its job runs again there. A worker that does not
 * answer within its job's deadline plus WORKER_SLACK seconds (a worker bug: the worker enforces the real
 * limits) is killed and handled the same way, and so is one found stopped (SIGSTOP from outside) once
 * its job's own deadline has passed (looked at every STOPPED_CHECK seconds). A job whose second worker dies
 * too is an infra_error: all rewards 0, left out of the loss by the trainer. Neither is the strategy's
 * doing (it cannot reach its worker), so neither is scored as its crash. Both are said on stderr. If
 * the zygote is gone no worker can be replaced: the call fails and the pool is marked broken.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "game2048/game.h"
#include "rewards/pool_internal.h"

#define WORKER_SLACK 10.0    /* seconds past a job's own deadline before the trainer kills its worker */
#define STOPPED_CHECK 0.5    /* past its job's own deadline, a worker is looked at this often: a stopped
                                one (SIGSTOP from outside) is killed at once, not after WORKER_SLACK */
#define LOG_SOURCE_LINES 60  /* lines of each strategy printed in sequential mode */

typedef struct {
    int fd;                  /* our end of the worker's job socket; -1 when the slot is empty */
    pid_t pid;
    int job;                 /* completion index in flight, -1 when idle */
    uint32_t job_id;
    double deadline;         /* trainer-side deadline of the job in flight (monotonic seconds) */
    double next_check;       /* when to look whether the worker is stopped (its job's own deadline + 0.5 s,
                                then every 0.5 s) */
    double sent;             /* when the job in flight was sent (monotonic seconds) */
} worker_slot;

struct reward_pool {
    reward_config cfg;
    pid_t zygote;
    int ctl;
    int nworkers;
    worker_slot *w;
    reward_game *games;      /* (G,) scratch for one result */
    uint32_t next_job_id;
    int broken;
    char broken_msg[RW_ERROR_LEN];
    reward_pool_stats stats;
};

/* One completion made ready for the pool. */
typedef struct {
    const char *src;         /* NULL: no function (msg says why) */
    size_t len;
    char msg[RW_ERROR_LEN];
} prepared;

#define P_FAIL(...) do { if (err && errlen) snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

int reward_pool_workers(const reward_config *cfg, char *note, size_t notelen) {
    if (!cfg) RW_ABORT("reward_pool_workers: cfg is NULL");
    if (note && notelen) note[0] = '\0';
    if (!cfg->parallel) return 1;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1) cpus = 1;
    if (cpus > 256) cpus = 256;
    if (cfg->workers <= 0) return (int)cpus;
    if (cfg->workers > REWARD_MAX_WORKERS_PER_CPU * cpus) {
        if (note && notelen)
            snprintf(note, notelen, "rewards.workers=%d is more than %dx the %ld online CPUs; using %ld", cfg->workers,
                     REWARD_MAX_WORKERS_PER_CPU, cpus, REWARD_MAX_WORKERS_PER_CPU * cpus);
        return (int)(REWARD_MAX_WORKERS_PER_CPU * cpus);
    }
    return cfg->workers;
}

reward_pool *reward_pool_create(const reward_config *cfg, char *err, size_t errlen) {
    if (!cfg) RW_ABORT("reward_pool_create: cfg is NULL");
    if (reward_config_validate(cfg, err, errlen) != 0) return NULL;
    char note[160];
    int n = reward_pool_workers(cfg, note, sizeof note);
    if (note[0]) fprintf(stderr, "reward pool: %s\n", note);
    reward_pool *p = calloc(1, sizeof *p);
    int *fds = calloc((size_t)n, sizeof *fds), *pids = calloc((size_t)n, sizeof *pids);
    if (p) {
        p->w = calloc((size_t)n, sizeof *p->w);
        p->games = calloc((size_t)cfg->games_per_strategy, sizeof *p->games);
    }
    if (!p || !fds || !pids || !p->w || !p->games) {
        if (p) { free(p->w); free(p->games); }
        free(p); free(fds); free(pids);
        if (err && errlen) snprintf(err, errlen, "reward pool: out of memory");
        return NULL;
    }
    p->cfg = *cfg;
    p->nworkers = n;
    if (zygote_start(cfg, n, &p->zygote, &p->ctl, fds, pids, err, errlen) != 0) {
        free(p->w); free(p->games); free(p); free(fds); free(pids);
        return NULL;
    }
    for (int i = 0; i < n; i++) p->w[i] = (worker_slot){fds[i], pids[i], -1, 0, 0.0, 0.0, 0.0};
    free(fds);
    free(pids);
    return p;
}

void reward_pool_destroy(reward_pool *p) {
    if (!p) return;
    /* Workers see EOF and exit; the zygote, seeing EOF on ctl, SIGKILLs and reaps them all. */
    for (int i = 0; i < p->nworkers; i++)
        if (p->w[i].fd >= 0) close(p->w[i].fd);
    zygote_stop(p->ctl, p->zygote);
    free(p->w);
    free(p->games);
    free(p);
}

void reward_pool_get_stats(const reward_pool *p, reward_pool_stats *out) {
    if (!p || !out) RW_ABORT("reward_pool_get_stats: NULL argument");
    *out = p->stats;
}

void reward_pool_reset_stats(reward_pool *p) {
    if (!p) RW_ABORT("reward_pool_reset_stats: NULL pool");
    memset(&p->stats, 0, sizeof p->stats);
}

int reward_pool_worker_pids(const reward_pool *p, int *pids, int max) {
    for (int i = 0; i < p->nworkers && i < max; i++) pids[i] = p->w[i].pid;
    return p->nworkers;
}

/* Whether process pid is stopped (state T or t in /proc/PID/stat: SIGSTOP, a debugger). 0 when it is
 * not, or when /proc does not say. */
static int process_stopped(pid_t pid) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *close_paren = strrchr(buf, ')');   /* the name may hold spaces and parentheses */
    return close_paren && close_paren[1] == ' ' && (close_paren[2] == 'T' || close_paren[2] == 't');
}

/* Replaces the worker in slot w with a fresh one from the zygote. alive: the old worker may still run
 * (it broke the protocol) and is killed first — its pid is still its own, since the zygote reaps only
 * when asked for a replacement. A worker whose socket reached EOF is dead already: no kill, so a pid
 * that the zygote reaped meanwhile (two deaths in one batch) is never signalled. */
static int replace_worker(reward_pool *p, worker_slot *w, int alive, char *err, size_t errlen) {
    if (w->fd >= 0) close(w->fd);
    if (alive && w->pid > 0) kill(w->pid, SIGKILL);
    w->fd = -1;
    w->job = -1;
    int fd, pid;
    if (zygote_spawn(p->ctl, &fd, &pid, p->broken_msg, sizeof p->broken_msg) != 0) {
        p->broken = 1;
        w->pid = 0;
        P_FAIL("%s", p->broken_msg);
    }
    w->fd = fd;
    w->pid = pid;
    return 0;
}

/* Sends job i to idle worker w (replacing it once if it turns out dead). */
static int dispatch(reward_pool *p, worker_slot *w, int i, const prepared *job, uint64_t seed, char *err,
                    size_t errlen) {
    for (int attempt = 0;; attempt++) {
        rw_job_header h = {RW_JOB_MAGIC, ++p->next_job_id, seed, (uint32_t)job->len, 0};
        if (w->fd >= 0 && rw_write_all(w->fd, &h, sizeof h, 1) == 0 &&
            rw_write_all(w->fd, job->src, job->len, 1) == 0) {
            w->job = i;
            w->job_id = h.job_id;
            w->sent = rw_now();
            w->deadline = w->sent + REWARD_CHECK_ALLOWANCE +
                          p->cfg.games_per_strategy * (p->cfg.timeout + REWARD_KILL_GRACE) + WORKER_SLACK;
            w->next_check = w->deadline - WORKER_SLACK + STOPPED_CHECK;
            return 0;
        }
        if (attempt == 1) P_FAIL("reward pool: a fresh worker refused a job (%s)", strerror(errno));
        if (replace_worker(p, w, 0, err, errlen) != 0) return -1;
    }
}

/* Reads worker w's result into p->games; returns the header's check, -2 when the worker is dead (EOF
 * or a socket error), -3 when it sent something that is not a result (it may still run). */
static int collect(reward_pool *p, worker_slot *w, rw_result_header *h) {
    int G = p->cfg.games_per_strategy;
    int r = rw_read_all(w->fd, h, sizeof *h);
    if (r != 1) return -2;
    if (h->magic != RW_RESULT_MAGIC || h->job_id != w->job_id || h->games != G) return -3;
    if (rw_read_all(w->fd, p->games, (size_t)G * sizeof *p->games) != 1) return -2;
    h->error[sizeof h->error - 1] = '\0';
    for (int g = 0; g < G; g++) {
        p->games[g].error[sizeof p->games[g].error - 1] = '\0';
        if ((int)p->games[g].outcome < 0 || p->games[g].outcome > OUTCOME_CRASH) return -3;
    }
    if (h->check != RW_CHECK_OK && h->check != OUTCOME_SYNTAX_ERROR && h->check != OUTCOME_BUILD_FAILED &&
        h->check != OUTCOME_BANNED_IMPORT)
        return -3;
    reward_pool_stats *s = &p->stats;
    s->jobs++;
    s->children += h->timing.children;
    s->cached_checks += h->timing.cached != 0;
    s->minor_faults += h->timing.minflt;
    s->fork_seconds += h->timing.fork;
    s->sandbox_seconds += h->timing.sandbox;
    s->check_seconds += h->timing.check;
    s->play_seconds += h->timing.play;
    s->finish_seconds += h->timing.finish;
    s->job_seconds += rw_now() - w->sent;
    return h->check;
}

static void log_result(FILE *log, int i, int n, const prepared *job, const reward_result *r,
                       const reward_game *games, int G) {
    fprintf(log, "[rewards] completion %d/%d", i + 1, n);
    if (!job->src) {
        fprintf(log, ": %s\n", job->msg);
    } else {
        fprintf(log, ": strategy of %zu bytes\n", job->len);
        const char *s = job->src, *end = job->src + job->len;
        for (int line = 0; s < end && line < LOG_SOURCE_LINES; line++) {
            const char *nl = memchr(s, '\n', (size_t)(end - s));
            size_t l = nl ? (size_t)(nl - s) : (size_t)(end - s);
            char esc[512];   /* the source is the policy's text: escaped, like every strategy message */
            size_t el = reward_escape_text(esc, sizeof esc, s, l);
            fprintf(log, "    | %s%s\n", esc, el + 1 < sizeof esc || l * 4 < sizeof esc ? "" : "...");
            s += l + (nl ? 1 : 0);
        }
        if (s < end) fprintf(log, "    | ...\n");
        if (r->games == 0) {
            fprintf(log, "  check: %s: %s\n", reward_outcome_name(r->outcome), r->error);
        } else {
            fprintf(log, "  check: ok\n");
            for (int g = 0; g < G; g++)
                fprintf(log, "  game %d: %-12s score %-6llu max tile %-5u moves %-5d %.3f s%s%s\n", g,
                        reward_outcome_name(games[g].outcome), (unsigned long long)games[g].score,
                        games[g].max_tile, games[g].moves, games[g].seconds, games[g].error[0] ? "  " : "",
                        games[g].error);
        }
    }
    fprintf(log, "  rewards:");
    for (int f = 0; f < RF_COUNT; f++) fprintf(log, " %s %+.2f", reward_func_name(f), r->rewards[f]);
    fprintf(log, " = %.3f (%.3f s)\n", r->reward, r->seconds);
    fflush(log);
}

/* The common path of score / score_sources / play. games_out: (max_games,) for n == 1, or NULL. */
static int pool_run(reward_pool *p, int n, const prepared *jobs, const uint64_t *seeds, reward_result *out,
                    reward_game *games_out, int max_games, FILE *log, char *err, size_t errlen) {
    if (p->broken) P_FAIL("reward pool is broken (%s); destroy it", p->broken_msg);
    const reward_config *c = &p->cfg;
    int G = c->games_per_strategy;
    FILE *seq_log = c->parallel ? NULL : log;
    int conc = c->parallel ? p->nworkers : 1;
    struct pollfd *pfd = calloc((size_t)p->nworkers, sizeof *pfd);
    int *slot_of = calloc((size_t)p->nworkers, sizeof *slot_of);
    if (!pfd || !slot_of) { free(pfd); free(slot_of); P_FAIL("reward pool: out of memory"); }
    char *tried = calloc((size_t)n + 1, 1);   /* 1: job i lost its worker once already */
    if (!tried) { free(pfd); free(slot_of); P_FAIL("reward pool: out of memory"); }
    int next = 0, inflight = 0, rc = 0;
    while ((next < n && rc == 0) || inflight > 0) {
        while (rc == 0 && next < n && inflight < conc) {
            if (!jobs[next].src) {
                reward_compute(c, OUTCOME_NO_FUNCTION, jobs[next].msg, NULL, 0, &out[next]);
                for (int g = 0; games_out && g < G && g < max_games; g++) {
                    memset(&games_out[g], 0, sizeof games_out[g]);
                    games_out[g].outcome = OUTCOME_NO_FUNCTION;
                    games_out[g].seed = game_seed_mix(seeds[next], (uint64_t)g, 0);
                    snprintf(games_out[g].error, sizeof games_out[g].error, "%.*s", REWARD_GAME_ERROR_LEN - 1, jobs[next].msg);
                }
                if (seq_log) log_result(seq_log, next, n, &jobs[next], &out[next], NULL, G);
                next++;
                continue;
            }
            worker_slot *w = NULL;
            for (int k = 0; k < p->nworkers && !w; k++)
                if (p->w[k].job < 0) w = &p->w[k];
            if (!w) RW_ABORT("pool_run: no idle worker with %d of %d in flight", inflight, conc);
            if (dispatch(p, w, next, &jobs[next], seeds[next], err, errlen) != 0) { rc = -1; break; }
            next++;
            inflight++;
        }
        if (inflight == 0) continue;

        /* Wait for a result, or for the earliest trainer-side deadline. */
        int np = 0;
        double now = rw_now(), first_deadline = 0.0;
        for (int k = 0; k < p->nworkers; k++) {
            if (p->w[k].job < 0) continue;
            double d = p->w[k].next_check < p->w[k].deadline ? p->w[k].next_check : p->w[k].deadline;
            if (np == 0 || d < first_deadline) first_deadline = d;
            pfd[np] = (struct pollfd){p->w[k].fd, POLLIN, 0};
            slot_of[np++] = k;
        }
        double wait = first_deadline - now;
        int ms = wait <= 0 ? 0 : wait > 3600 ? 3600000 : (int)(wait * 1000) + 1;
        int r = poll(pfd, (nfds_t)np, ms);
        if (r < 0 && errno != EINTR) RW_ABORT("poll: %s", strerror(errno));
        now = rw_now();
        for (int q = 0; q < np; q++) {
            worker_slot *w = &p->w[slot_of[q]];
            int ready = r > 0 && (pfd[q].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL));
            int hung = 0;
            if (!ready && now >= w->next_check && now < w->deadline) {
                w->next_check = now + STOPPED_CHECK;
                if (process_stopped(w->pid)) {
                    kill(w->pid, SIGKILL);   /* stopped from outside: its socket reaches EOF, read below */
                    ready = hung = 1;
                }
            }
            if (!ready && now >= w->deadline) {
                kill(w->pid, SIGKILL);   /* hung: its socket reaches EOF, read below */
                ready = hung = 1;
            }
            if (!ready) continue;
            int i = w->job;
            rw_result_header h;
            int check = collect(p, w, &h);
            int died = check == -2 || check == -3;
            if (died) {
                const char *why = hung ? "did not answer in time (stopped?) and was killed"
                                  : check == -3 ? "broke the protocol" : "died";
                int again = !tried[i] && rc == 0;
                fprintf(stderr, "reward pool: worker %d %s while scoring completion %d%s\n", (int)w->pid, why, i,
                        again ? "; running it again on a fresh worker" : "");
                tried[i] = 1;
                if (replace_worker(p, w, check == -3 || hung, err, errlen) != 0) rc = -1;
                if (again && rc == 0) {
                    if (dispatch(p, w, i, &jobs[i], seeds[i], err, errlen) != 0) rc = -1;
                    else continue;   /* still in flight, on the fresh worker */
                }
                /* Lost twice (or the pool broke): an infrastructure error, never the strategy's. */
                memset(&out[i], 0, sizeof out[i]);
                out[i].outcome = OUTCOME_INFRA_ERROR;
                snprintf(out[i].error, sizeof out[i].error, "infra_error: the worker %s twice; not scored", why);
                if (rc == 0)
                    fprintf(stderr, "reward pool: completion %d is an infra_error (its worker failed twice); "
                                    "it is left out of the loss and the reward means\n", i);
                for (int g = 0; games_out && g < G && g < max_games; g++) {
                    memset(&games_out[g], 0, sizeof games_out[g]);
                    games_out[g].outcome = OUTCOME_INFRA_ERROR;
                    games_out[g].seed = game_seed_mix(seeds[i], (uint64_t)g, 0);
                    snprintf(games_out[g].error, sizeof games_out[g].error, "%.*s", REWARD_GAME_ERROR_LEN - 1,
                             out[i].error);
                }
                if (seq_log) log_result(seq_log, i, n, &jobs[i], &out[i], NULL, G);
                w->job = -1;
                inflight--;
                continue;
            }
            reward_compute(c, check, h.error, p->games, G, &out[i]);
            out[i].seconds = h.seconds;
            for (int g = 0; games_out && g < G && g < max_games; g++) {
                games_out[g] = p->games[g];
                if (check != RW_CHECK_OK) {
                    uint64_t seed = games_out[g].seed;
                    memset(&games_out[g], 0, sizeof games_out[g]);
                    games_out[g].seed = seed;
                    games_out[g].outcome = (reward_outcome)check;
                    snprintf(games_out[g].error, sizeof games_out[g].error, "%.*s", REWARD_GAME_ERROR_LEN - 1, h.error);
                }
            }
            if (seq_log) log_result(seq_log, i, n, &jobs[i], &out[i], p->games, G);
            w->job = -1;
            inflight--;
        }
    }
    free(pfd);
    free(slot_of);
    free(tried);
    return rc;
}

int reward_pool_score(reward_pool *p, int n, const char *const *completions, const uint64_t *seeds,
                      reward_result *out, FILE *log, char *err, size_t errlen) {
    if (n < 0 || (n > 0 && (!completions || !seeds || !out))) RW_ABORT("reward_pool_score: bad arguments (n = %d)", n);
    prepared *jobs = calloc((size_t)n + 1, sizeof *jobs);
    char **bufs = calloc((size_t)n + 1, sizeof *bufs);
    if (!jobs || !bufs) { free(jobs); free(bufs); P_FAIL("reward pool: out of memory"); }
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const char *text = completions[i] ? completions[i] : "";
        size_t cap = strlen(text) + 1;
        bufs[i] = malloc(cap);
        if (!bufs[i]) { rc = -1; snprintf(err, errlen, "reward pool: out of memory"); break; }
        int e = reward_extract_strategy(text, bufs[i], cap);
        size_t len = e == 0 ? strlen(bufs[i]) : 0;
        if (e != 0)
            snprintf(jobs[i].msg, sizeof jobs[i].msg,
                     "no function: no ``` fenced block starting with def strategy(board):");
        else if (len > REWARD_MAX_SOURCE)
            snprintf(jobs[i].msg, sizeof jobs[i].msg, "no function: the strategy has %zu bytes, more than %d",
                     len, REWARD_MAX_SOURCE);
        else {
            jobs[i].src = bufs[i];
            jobs[i].len = len;
        }
    }
    if (rc == 0) rc = pool_run(p, n, jobs, seeds, out, NULL, 0, log, err, errlen);
    for (int i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
    free(jobs);
    return rc;
}

/* A raw source as a job: NULL, empty or too long is no function. */
static void prepare_source(prepared *j, const char *src) {
    memset(j, 0, sizeof *j);
    size_t len = src ? strlen(src) : 0;
    if (!src || len == 0) snprintf(j->msg, sizeof j->msg, "no function: empty source");
    else if (len > REWARD_MAX_SOURCE)
        snprintf(j->msg, sizeof j->msg, "no function: the strategy has %zu bytes, more than %d", len,
                 REWARD_MAX_SOURCE);
    else {
        j->src = src;
        j->len = len;
    }
}

int reward_pool_score_sources(reward_pool *p, int n, const char *const *sources, const uint64_t *seeds,
                              reward_result *out, FILE *log, char *err, size_t errlen) {
    if (n < 0 || (n > 0 && (!sources || !seeds || !out)))
        RW_ABORT("reward_pool_score_sources: bad arguments (n = %d)", n);
    prepared *jobs = calloc((size_t)n + 1, sizeof *jobs);
    if (!jobs) P_FAIL("reward pool: out of memory");
    for (int i = 0; i < n; i++) prepare_source(&jobs[i], sources[i]);
    int rc = pool_run(p, n, jobs, seeds, out, NULL, 0, log, err, errlen);
    free(jobs);
    return rc;
}

int reward_pool_play(reward_pool *p, const char *source, uint64_t seed, reward_game *games, int max_games,
                     reward_result *out, char *err, size_t errlen) {
    if (!out || (max_games > 0 && !games)) RW_ABORT("reward_pool_play: bad arguments");
    prepared job;
    prepare_source(&job, source);
    return pool_run(p, 1, &job, &seed, out, max_games > 0 ? games : NULL, max_games, NULL, err, errlen);
}
