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
    int batch_open;          /* a reward_batch is open (one at a time) */
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

/* A batch of n jobs that arrive one by one (reward_batch_add) and run while more arrive. Jobs are
 * dispatched in arrival order (parallel = 1) or in completion-index order (parallel = 0, so that the
 * sequential log is in order); each result lands in out[i] whatever the order, so the results are the
 * same as scoring the n jobs in one call. */
struct reward_batch {
    reward_pool *p;
    int n;
    reward_result *out;      /* (n,) */
    reward_game *games_out;  /* (max_games,) for a one-job batch of reward_pool_play, or NULL */
    int max_games;
    FILE *seq_log;           /* parallel = 0: the per-completion log, or NULL */
    prepared *jobs;          /* (n,) */
    char **bufs;             /* (n,) extracted sources this batch owns */
    uint64_t *seeds;         /* (n,) */
    unsigned char *state;    /* (n,) JOB_* */
    char *tried;             /* (n,) 1: job i lost its worker once already */
    int *queue;              /* (n,) arrival order of the jobs not yet dispatched (parallel = 1) */
    int qhead, qtail;
    int next_seq;            /* parallel = 0: the next completion index to dispatch */
    int added, finished, inflight;
    struct pollfd *pfd;      /* (workers,) */
    int *slot_of;            /* (workers,) */
    int rc;                  /* -1 once the pool failed: nothing more is dispatched */
    char err[2 * RW_ERROR_LEN];
};

enum { JOB_ABSENT, JOB_QUEUED, JOB_RUNNING, JOB_DONE };

reward_batch *reward_batch_begin(reward_pool *p, int n, reward_result *out, FILE *log, char *err, size_t errlen) {
    if (n < 0 || (n > 0 && !out)) RW_ABORT("reward_batch_begin: bad arguments (n = %d)", n);
    if (p->batch_open) RW_ABORT("reward_batch_begin: the pool already has an open batch");
    if (p->broken) {
        if (err && errlen) snprintf(err, errlen, "reward pool is broken (%s); destroy it", p->broken_msg);
        return NULL;
    }
    reward_batch *b = calloc(1, sizeof *b);
    size_t m = (size_t)n + 1;
    if (b) {
        b->jobs = calloc(m, sizeof *b->jobs);
        b->bufs = calloc(m, sizeof *b->bufs);
        b->seeds = calloc(m, sizeof *b->seeds);
        b->state = calloc(m, 1);
        b->tried = calloc(m, 1);
        b->queue = calloc(m, sizeof *b->queue);
        b->pfd = calloc((size_t)p->nworkers, sizeof *b->pfd);
        b->slot_of = calloc((size_t)p->nworkers, sizeof *b->slot_of);
    }
    if (!b || !b->jobs || !b->bufs || !b->seeds || !b->state || !b->tried || !b->queue || !b->pfd || !b->slot_of) {
        if (b) { b->n = 0; free(b->jobs); free(b->bufs); free(b->seeds); free(b->state); free(b->tried);
                 free(b->queue); free(b->pfd); free(b->slot_of); free(b); }
        if (err && errlen) snprintf(err, errlen, "reward pool: out of memory (%d jobs)", n);
        return NULL;
    }
    b->p = p;
    b->n = n;
    b->out = out;
    b->seq_log = p->cfg.parallel ? NULL : log;
    p->batch_open = 1;
    return b;
}

/* Sets the games_out record of a job that played no game (outcome o, message msg). */
static void unplayed_games(reward_batch *b, int i, reward_outcome o, const char *msg) {
    for (int g = 0; b->games_out && g < b->p->cfg.games_per_strategy && g < b->max_games; g++) {
        memset(&b->games_out[g], 0, sizeof b->games_out[g]);
        b->games_out[g].outcome = o;
        b->games_out[g].seed = game_seed_mix(b->seeds[i], (uint64_t)g, 0);
        snprintf(b->games_out[g].error, sizeof b->games_out[g].error, "%.*s", REWARD_GAME_ERROR_LEN - 1, msg);
    }
}

/* The next job to start, or -1: arrival order, or index order in sequential mode. */
static int next_job(reward_batch *b) {
    if (b->p->cfg.parallel) return b->qhead < b->qtail ? b->queue[b->qhead] : -1;
    return b->next_seq < b->n && b->state[b->next_seq] == JOB_QUEUED ? b->next_seq : -1;
}

static void pop_job(reward_batch *b) {
    if (b->p->cfg.parallel) b->qhead++;
    else b->next_seq++;
}

/* Starts queued jobs on idle workers (jobs without a function are scored at once). */
static void start_jobs(reward_batch *b) {
    reward_pool *p = b->p;
    const reward_config *c = &p->cfg;
    int conc = c->parallel ? p->nworkers : 1;
    int i;
    while (b->rc == 0 && (i = next_job(b)) >= 0) {
        if (!c->parallel && b->inflight >= conc) break;   /* sequential: in order, the log too */
        if (!b->jobs[i].src) {
            reward_compute(c, OUTCOME_NO_FUNCTION, b->jobs[i].msg, NULL, 0, &b->out[i]);
            unplayed_games(b, i, OUTCOME_NO_FUNCTION, b->jobs[i].msg);
            if (b->seq_log) log_result(b->seq_log, i, b->n, &b->jobs[i], &b->out[i], NULL, c->games_per_strategy);
            b->state[i] = JOB_DONE;
            b->finished++;
            pop_job(b);
            continue;
        }
        if (b->inflight >= conc) break;
        worker_slot *w = NULL;
        for (int k = 0; k < p->nworkers && !w; k++)
            if (p->w[k].job < 0) w = &p->w[k];
        if (!w) RW_ABORT("reward batch: no idle worker with %d of %d in flight", b->inflight, conc);
        if (dispatch(p, w, i, &b->jobs[i], b->seeds[i], b->err, sizeof b->err) != 0) { b->rc = -1; break; }
        b->state[i] = JOB_RUNNING;
        pop_job(b);
        b->inflight++;
    }
}

/* One round: start what can start, wait up to max_wait seconds (< 0: until a result or a deadline) for
 * results, handle every ready worker (results, deaths, hangs, stopped workers). */
static void batch_round(reward_batch *b, double max_wait) {
    reward_pool *p = b->p;
    const reward_config *c = &p->cfg;
    int G = c->games_per_strategy;
    start_jobs(b);
    if (b->inflight == 0) return;

    /* Wait for a result, or for the earliest trainer-side deadline. */
    int np = 0;
    double now = rw_now(), first_deadline = 0.0;
    for (int k = 0; k < p->nworkers; k++) {
        if (p->w[k].job < 0) continue;
        double d = p->w[k].next_check < p->w[k].deadline ? p->w[k].next_check : p->w[k].deadline;
        if (np == 0 || d < first_deadline) first_deadline = d;
        b->pfd[np] = (struct pollfd){p->w[k].fd, POLLIN, 0};
        b->slot_of[np++] = k;
    }
    double wait = first_deadline - now;
    if (max_wait >= 0 && wait > max_wait) wait = max_wait;
    int ms = wait <= 0 ? 0 : wait > 3600 ? 3600000 : (int)(wait * 1000) + 1;
    int r = poll(b->pfd, (nfds_t)np, ms);
    if (r < 0 && errno != EINTR) RW_ABORT("poll: %s", strerror(errno));
    now = rw_now();
    for (int q = 0; q < np; q++) {
        worker_slot *w = &p->w[b->slot_of[q]];
        int ready = r > 0 && (b->pfd[q].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL));
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
            int again = !b->tried[i] && b->rc == 0;
            fprintf(stderr, "reward pool: worker %d %s while scoring completion %d%s\n", (int)w->pid, why, i,
                    again ? "; running it again on a fresh worker" : "");
            b->tried[i] = 1;
            if (replace_worker(p, w, check == -3 || hung, b->err, sizeof b->err) != 0) b->rc = -1;
            if (again && b->rc == 0) {
                if (dispatch(p, w, i, &b->jobs[i], b->seeds[i], b->err, sizeof b->err) != 0) b->rc = -1;
                else continue;   /* still in flight, on the fresh worker */
            }
            /* Lost twice (or the pool broke): an infrastructure error, never the strategy's. */
            memset(&b->out[i], 0, sizeof b->out[i]);
            b->out[i].outcome = OUTCOME_INFRA_ERROR;
            snprintf(b->out[i].error, sizeof b->out[i].error, "infra_error: the worker %s twice; not scored", why);
            if (b->rc == 0)
                fprintf(stderr, "reward pool: completion %d is an infra_error (its worker failed twice); "
                                "it is left out of the loss and the reward means\n", i);
            unplayed_games(b, i, OUTCOME_INFRA_ERROR, b->out[i].error);
            if (b->seq_log) log_result(b->seq_log, i, b->n, &b->jobs[i], &b->out[i], NULL, G);
        } else {
            reward_compute(c, check, h.error, p->games, G, &b->out[i]);
            b->out[i].seconds = h.seconds;
            for (int g = 0; b->games_out && g < G && g < b->max_games; g++) {
                b->games_out[g] = p->games[g];
                if (check != RW_CHECK_OK) {
                    uint64_t seed = b->games_out[g].seed;
                    memset(&b->games_out[g], 0, sizeof b->games_out[g]);
                    b->games_out[g].seed = seed;
                    b->games_out[g].outcome = (reward_outcome)check;
                    snprintf(b->games_out[g].error, sizeof b->games_out[g].error, "%.*s", REWARD_GAME_ERROR_LEN - 1,
                             h.error);
                }
            }
            if (b->seq_log) log_result(b->seq_log, i, b->n, &b->jobs[i], &b->out[i], p->games, G);
        }
        w->job = -1;
        b->inflight--;
        b->state[i] = JOB_DONE;
        b->finished++;
    }
    start_jobs(b);
}

/* Queues job i (prepared: jobs[i] filled) and starts what can start without waiting. */
static void batch_queue(reward_batch *b, int i, uint64_t seed) {
    b->seeds[i] = seed;
    b->state[i] = JOB_QUEUED;
    b->added++;
    if (b->p->cfg.parallel) b->queue[b->qtail++] = i;
    batch_round(b, 0.0);
}

static void batch_check_add(reward_batch *b, int i) {
    if (i < 0 || i >= b->n || b->state[i] != JOB_ABSENT)
        RW_ABORT("reward_batch_add: completion %d is out of range [0,%d) or was added already", i, b->n);
}

/* Extracts completion text's strategy into job j (bufs[i] owns it). Returns 0, -1 out of memory. */
static int prepare_completion(reward_batch *b, int i, const char *text) {
    prepared *j = &b->jobs[i];
    text = text ? text : "";
    size_t cap = strlen(text) + 1;
    b->bufs[i] = malloc(cap);
    if (!b->bufs[i]) return -1;
    int e = reward_extract_strategy(text, b->bufs[i], cap);
    size_t len = e == 0 ? strlen(b->bufs[i]) : 0;
    if (e != 0)
        snprintf(j->msg, sizeof j->msg, "no function: no ``` fenced block starting with def strategy(board):");
    else if (len > REWARD_MAX_SOURCE)
        snprintf(j->msg, sizeof j->msg, "no function: the strategy has %zu bytes, more than %d", len,
                 REWARD_MAX_SOURCE);
    else {
        j->src = b->bufs[i];
        j->len = len;
    }
    return 0;
}

/* A raw source as a job: NULL, empty or too long is no function. The source must outlive the batch. */
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

int reward_batch_add(reward_batch *b, int i, const char *completion, uint64_t seed) {
    batch_check_add(b, i);
    if (prepare_completion(b, i, completion) != 0) {
        if (b->rc == 0) snprintf(b->err, sizeof b->err, "reward pool: out of memory");
        b->rc = -1;
        b->state[i] = JOB_DONE;   /* nothing to wait for */
        b->added++;
        b->finished++;
        return -1;
    }
    batch_queue(b, i, seed);
    return b->rc;
}

/* Same for a raw Python source, which must stay valid until reward_batch_finish returns. */
static int batch_add_source(reward_batch *b, int i, const char *source, uint64_t seed) {
    batch_check_add(b, i);
    prepare_source(&b->jobs[i], source);
    batch_queue(b, i, seed);
    return b->rc;
}

int reward_batch_poll(reward_batch *b) {
    batch_round(b, 0.0);
    return b->rc;
}

int reward_batch_pending(const reward_batch *b) {
    return b->added - b->finished;
}

int reward_batch_finish(reward_batch *b, char *err, size_t errlen) {
    if (b->added != b->n && b->rc == 0)
        RW_ABORT("reward_batch_finish: %d of the batch's %d completions were added", b->added, b->n);
    /* after a failure, queued jobs never start: only the ones in flight are waited for */
    while (b->inflight > 0 || (b->rc == 0 && b->finished < b->added)) batch_round(b, -1.0);
    int rc = b->rc;
    if (rc != 0 && err && errlen) snprintf(err, errlen, "%s", b->err);
    for (int i = 0; i < b->n; i++) free(b->bufs[i]);
    free(b->jobs); free(b->bufs); free(b->seeds); free(b->state); free(b->tried); free(b->queue);
    free(b->pfd); free(b->slot_of);
    b->p->batch_open = 0;
    free(b);
    return rc;
}

int reward_pool_score(reward_pool *p, int n, const char *const *completions, const uint64_t *seeds,
                      reward_result *out, FILE *log, char *err, size_t errlen) {
    if (n < 0 || (n > 0 && (!completions || !seeds || !out))) RW_ABORT("reward_pool_score: bad arguments (n = %d)", n);
    reward_batch *b = reward_batch_begin(p, n, out, log, err, errlen);
    if (!b) return -1;
    for (int i = 0; i < n; i++) reward_batch_add(b, i, completions[i], seeds[i]);
    return reward_batch_finish(b, err, errlen);
}

int reward_pool_score_sources(reward_pool *p, int n, const char *const *sources, const uint64_t *seeds,
                              reward_result *out, FILE *log, char *err, size_t errlen) {
    if (n < 0 || (n > 0 && (!sources || !seeds || !out)))
        RW_ABORT("reward_pool_score_sources: bad arguments (n = %d)", n);
    reward_batch *b = reward_batch_begin(p, n, out, log, err, errlen);
    if (!b) return -1;
    for (int i = 0; i < n; i++) batch_add_source(b, i, sources[i], seeds[i]);
    return reward_batch_finish(b, err, errlen);
}

int reward_pool_play(reward_pool *p, const char *source, uint64_t seed, reward_game *games, int max_games,
                     reward_result *out, char *err, size_t errlen) {
    if (!out || (max_games > 0 && !games)) RW_ABORT("reward_pool_play: bad arguments");
    reward_batch *b = reward_batch_begin(p, 1, out, NULL, err, errlen);
    if (!b) return -1;
    b->games_out = max_games > 0 ? games : NULL;
    b->max_games = max_games;
    batch_add_source(b, 0, source, seed);
    return reward_batch_finish(b, err, errlen);
}
