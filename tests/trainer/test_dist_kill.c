/*
 * tests/trainer/test_dist_kill.c: a data-parallel run whose rank dies.
 *
 * - reference: `mpirun -np 2 grpo2048 train` for 4 steps of the embedded default, a checkpoint every step;
 * - the same run, with rank 1 killed by SIGKILL as soon as checkpoint-2 exists (during step 3): the job
 *   ends within 30 s (mpirun notices the dead rank and ends the others; no rank hangs in a collective),
 *   with a message naming rank 1 and the signal;
 * - `--resume latest` with 2 ranks then finishes it: every step's reward and loss, and the final weights,
 *   equal the reference's exactly (the CPU is deterministic and the resume bit-exact);
 * - resuming that 2-rank checkpoint in one process is refused (exit 2) with a message naming both world
 *   sizes;
 * - a rank that fails (rank 0 cannot create output_dir) ends the job at once, naming its rank and reason;
 * - a layout whose generation outlives its optimizer step (num_iterations 2: each generation trains two
 *   steps, its old log-probabilities kept): 2 ranks for 1 step, then `--resume` to 4 — each rank reloads
 *   its own buffered generation (generation.bin, generation.rank1.bin) — equals the uninterrupted 4-step
 *   2-rank run bit for bit, and that run equals one process with the same global batch (rewards exact,
 *   losses and weights within 1e-6).
 */
#include <dirent.h>
#include <signal.h>
#include <time.h>

#include "tests/trainer/dist_testutil.h"

#define STEPS 4

static char tmp[] = "/tmp/grpo2048-dist-kill-XXXXXX";

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* The pid of mpirun's child whose environment says OMPI_COMM_WORLD_RANK=rank, or -1. */
static pid_t find_rank(pid_t mpirun, int rank) {
    DIR *d = opendir("/proc");
    if (!d) return -1;
    struct dirent *e;
    pid_t found = -1;
    char want[64];
    snprintf(want, sizeof want, "OMPI_COMM_WORLD_RANK=%d", rank);
    while (found < 0 && (e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0) continue;
        char path[300], buf[1024];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        int ppid = 0;
        size_t k = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[k] = 0;
        const char *rp = strrchr(buf, ')');   /* "pid (comm) state ppid ..." */
        if (!rp || sscanf(rp + 1, " %*c %d", &ppid) != 1 || ppid != mpirun) continue;
        snprintf(path, sizeof path, "/proc/%ld/environ", pid);
        f = fopen(path, "rb");
        if (!f) continue;
        static char env[1 << 16];
        k = fread(env, 1, sizeof env - 1, f);
        fclose(f);
        env[k] = 0;
        for (size_t i = 0; i < k; i += strlen(env + i) + 1)
            if (!strcmp(env + i, want)) { found = (pid_t)pid; break; }
    }
    closedir(d);
    return found;
}

int main(void) {
    dt_init();
    if (!mkdtemp(tmp)) { perror("mkdtemp"); return 1; }
    char ref[4200], run[4200], logr[4300], logk[4300], logs[4300], log1[4300], outr[4300], outk[4300];
    snprintf(ref, sizeof ref, "%s/ref", tmp);
    snprintf(run, sizeof run, "%s/killed", tmp);
    snprintf(logr, sizeof logr, "%s.log", ref);
    snprintf(logk, sizeof logk, "%s.log", run);
    snprintf(logs, sizeof logs, "%s-resume.log", run);
    snprintf(log1, sizeof log1, "%s-one.log", run);
    snprintf(outr, sizeof outr, "output_dir=%s", ref);
    snprintf(outk, sizeof outk, "output_dir=%s", run);
#define TRAIN_ARGS(out) "train", "configs/default.yaml", "--set", "max_steps=4", "--set", "save_steps=1", "--set", \
    "max_completion_length=64", "--set", "per_device_train_batch_size=8", "--set", out
    const char *ar[] = {TRAIN_ARGS(outr), NULL};
    const char *ak[] = {TRAIN_ARGS(outk), NULL};
    const char *as[] = {TRAIN_ARGS(outk), "--resume", "latest", NULL};
    CHECK_EQ_INT(dt_run(2, ar, logr), 0);

    /* the run to kill */
    pid_t mp = dt_spawn(2, ak, logk);
    char marker[4400];
    snprintf(marker, sizeof marker, "%s/checkpoint-2/trainer_state.json", run);
    const double t_start = now();
    int st = 0, ended = 0;
    while (access(marker, F_OK) != 0 && now() - t_start < 120) {
        if (waitpid(mp, &st, WNOHANG) == mp) { ended = 1; break; }
        usleep(20000);
    }
    CHECK_MSG(!ended && access(marker, F_OK) == 0, "checkpoint-2 appeared while the job ran");
    pid_t r1 = ended ? -1 : find_rank(mp, 1);
    CHECK_MSG(r1 > 0, "found rank 1 among mpirun's children");
    double t_kill = now(), waited = -1;
    if (r1 > 0) {
        kill(r1, SIGKILL);
        while (now() - t_kill < 60) {
            if (waitpid(mp, &st, WNOHANG) == mp) { ended = 1; break; }
            usleep(20000);
        }
        waited = now() - t_kill;
    }
    if (!ended) {   /* a hang: end the job so the test itself ends */
        kill(-mp, SIGKILL);
        waitpid(mp, &st, 0);
    }
    CHECK_MSG(ended && waited <= 30, "the job ended %.1f s after rank 1 was killed (at most 30 s)", waited);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) != 0, "mpirun exits non-zero (status %d)", st);
    char *log = dt_slurp(logk);
    CHECK_MSG(log && strstr(log, "rank 1") && (strstr(log, "signal 9") || strstr(log, "Killed")),
              "the message names rank 1 and the signal; log:\n%s", log ? log : "");
    free(log);
    printf("rank 1 killed during step 3: the job ended after %.2f s\n", waited);

    /* a different world size is refused */
    const char *a1[] = {TRAIN_ARGS(outk), "--resume", "latest", NULL};
    CHECK_EQ_INT(dt_run(0, a1, log1), 2);
    log = dt_slurp(log1);
    CHECK_MSG(log && strstr(log, "trained by 2 ranks and this run has 1"), "the refusal names both world sizes:\n%s",
              log ? log : "");
    free(log);

    /* a failing rank ends the job, naming itself */
    char logf[4300], badout[4400];
    snprintf(logf, sizeof logf, "%s/fail.log", tmp);
    snprintf(badout, sizeof badout, "output_dir=%s/fail.log/x", tmp);   /* a folder inside a file */
    const char *af[] = {TRAIN_ARGS(badout), NULL};
    double t_fail = now();
    const int frc = dt_run(2, af, logf);
    t_fail = now() - t_fail;
    CHECK_MSG(frc != 0 && t_fail < 30, "a failing rank ends the job: exit %d after %.1f s", frc, t_fail);
    log = dt_slurp(logf);
    CHECK_MSG(log && strstr(log, "rank 0 of 2") && strstr(log, "cannot create folder"),
              "the message names the rank and the reason:\n%s", log ? log : "");
    free(log);

    /* resumed with 2 ranks: the reference's results */
    CHECK_EQ_INT(dt_run(2, as, logs), 0);
    double rr[STEPS], rk[STEPS], lr[STEPS], lk[STEPS];
    CHECK_EQ_INT(dt_metric(ref, "reward", rr, STEPS), STEPS);
    CHECK_EQ_INT(dt_metric(run, "reward", rk, STEPS), STEPS);
    CHECK_EQ_INT(dt_metric(ref, "loss", lr, STEPS), STEPS);
    CHECK_EQ_INT(dt_metric(run, "loss", lk, STEPS), STEPS);
    for (int s = 0; s < STEPS; s++) {
        CHECK_MSG(rr[s] == rk[s], "step %d reward %.9g (uninterrupted) vs %.9g (killed, resumed)", s + 1, rr[s], rk[s]);
        CHECK_MSG(lr[s] == lk[s], "step %d loss %.12g vs %.12g", s + 1, lr[s], lk[s]);
    }
    double w[3];
    dt_weights_rel(ref, run, NULL, w);
    CHECK_MSG(w[1] == 0, "final weights equal bit for bit (elementwise relative difference %.3g)", w[1]);
    CHECK_EQ_INT(dt_query_int(run, "select count(distinct step) from completions where rank = 1"), STEPS);

    /* num_iterations 2: buffered generations in the checkpoint, per rank */
    {
        char d2[4200], d1[4200], dr[4200], o2[4300], o1[4300], or_[4300], l2[4300], l1[4300], lr1[4300], lr2[4300];
        snprintf(d2, sizeof d2, "%s/iter-two", tmp);
        snprintf(d1, sizeof d1, "%s/iter-one", tmp);
        snprintf(dr, sizeof dr, "%s/iter-resumed", tmp);
        snprintf(o2, sizeof o2, "output_dir=%s", d2);
        snprintf(o1, sizeof o1, "output_dir=%s", d1);
        snprintf(or_, sizeof or_, "output_dir=%s", dr);
        snprintf(l2, sizeof l2, "%s.log", d2);
        snprintf(l1, sizeof l1, "%s.log", d1);
        snprintf(lr1, sizeof lr1, "%s-1.log", dr);
        snprintf(lr2, sizeof lr2, "%s-2.log", dr);
#define ITER_ARGS(out, b, steps) "train", "configs/default.yaml", "--set", "num_iterations=2", "--set", \
    "max_completion_length=48", "--set", "save_steps=0", "--set", b, "--set", steps, "--set", out
        const char *i2[] = {ITER_ARGS(o2, "per_device_train_batch_size=8", "max_steps=4"), NULL};
        const char *i1[] = {ITER_ARGS(o1, "per_device_train_batch_size=16", "max_steps=4"), NULL};
        const char *ia[] = {ITER_ARGS(or_, "per_device_train_batch_size=8", "max_steps=1"), NULL};
        const char *ib[] = {ITER_ARGS(or_, "per_device_train_batch_size=8", "max_steps=4"), "--resume", "latest", NULL};
        CHECK_EQ_INT(dt_run(2, i2, l2), 0);
        CHECK_EQ_INT(dt_run(0, i1, l1), 0);
        CHECK_EQ_INT(dt_run(2, ia, lr1), 0);
        char g1[4400];
        snprintf(g1, sizeof g1, "%s/checkpoint-1/generation.rank1.bin", dr);
        CHECK_MSG(access(g1, R_OK) == 0, "%s written", g1);
        CHECK_EQ_INT(dt_run(2, ib, lr2), 0);
        double a[STEPS], b[STEPS], c[STEPS], la[STEPS], lb[STEPS], lc[STEPS];
        CHECK_EQ_INT(dt_metric(d2, "loss", la, STEPS), STEPS);
        CHECK_EQ_INT(dt_metric(dr, "loss", lb, STEPS), STEPS);
        CHECK_EQ_INT(dt_metric(d1, "loss", lc, STEPS), STEPS);
        dt_metric(d2, "reward", a, STEPS);
        dt_metric(dr, "reward", b, STEPS);
        dt_metric(d1, "reward", c, STEPS);
        for (int s = 0; s < STEPS; s++) {
            CHECK_MSG(la[s] == lb[s], "num_iterations 2: step %d loss %.12g (uninterrupted) vs %.12g (resumed)", s + 1,
                      la[s], lb[s]);
            CHECK_MSG(dt_rel(la[s], lc[s], 1e-12) <= 1e-6, "num_iterations 2: step %d loss %.12g (2 ranks) vs %.12g "
                      "(1 process)", s + 1, la[s], lc[s]);
            if (s % 2 == 0) {   /* the generating steps log the rewards */
                CHECK_MSG(a[s] == b[s] && a[s] == c[s], "num_iterations 2: step %d reward %.9g / %.9g / %.9g", s + 1,
                          a[s], b[s], c[s]);
            }
        }
        double w[3];
        dt_weights_rel(d2, dr, NULL, w);
        CHECK_MSG(w[1] == 0, "num_iterations 2: resumed weights equal bit for bit (%.3g)", w[1]);
        dt_weights_rel(d2, d1, NULL, w);
        CHECK_MSG(w[0] <= 1e-6, "num_iterations 2: 2 ranks vs 1 process weights %.3g (norm-wise)", w[0]);
        printf("num_iterations 2: resumed = uninterrupted; 2 ranks vs 1 process: weights %.2e (norm-wise)\n", w[0]);
    }

    dt_cleanup(tmp);
    return TEST_DONE();
}
