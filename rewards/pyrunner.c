/*
 * rewards/pyrunner.c: the Python side of the reward pool — starting CPython once in the zygote; in each
 * worker's checker, checking and compiling sources; in each sandboxed job child, building the function
 * and playing the games.
 *
 * Zygote (pyrunner_init): CPython is started isolated from the environment (no PYTHONPATH, no user
 * site, no site module), with hash randomisation off (hash seed 0, so set iteration order — and thus
 * a strategy's behaviour — is the same in every run), without signal handlers and without writing
 * bytecode. Its home is GRPO2048_PYTHON_HOME ("/usr": Debian's libpython3.11 from pkg-config
 * python3-embed), never a python3 found on PATH. It pre-imports the allowed standard-library modules
 * (inside the sandbox no file can be opened, so these are the only modules a strategy can import, plus
 * CPython's built-in ones), sets sys.stdin/stdout/stderr to None (print() becomes a no-op: the child
 * has no fds to print to), compiles the checker below, runs a sample strategy through the whole
 * per-job path a few times (warm_up: lazily bound symbols resolved, bytecode specialised, type caches
 * and the game's N=4 tables filled, so children inherit them instead of copying pages to fill them)
 * and freezes the heap (gc.freeze) so forked processes share it copy-on-write.
 *
 * The check (Python, CHECKER_SOURCE): UTF-8, ast.parse + compile (syntax_error); an AST walk over every
 * import (`import x`, `from x import y`, `__import__("x")`, `importlib.import_module("x")`) whose root
 * module is not in sys.stdlib_module_names, relative imports included (banned_import); exactly one
 * top-level statement, a plain `def strategy(board)` with one positional parameter, no defaults, no
 * decorators (build_failed). It runs in the worker's checker (pyrunner_checker_main: a long-lived
 * sandboxed process that answers the verdict and the marshalled code object), or, when no checker could
 * answer, in the job child itself.
 *
 * Job child (pyrunner_run), after sandbox_enter:
 *   1. the code: unmarshalled from the checker's bytes (or the check above, run here);
 *   2. build: exec in a fresh dict namespace with the normal builtins; an exception is build_failed;
 *   3. one RW_REC_CHECK record, then per game: random.seed(game seed); until the game ends, call
 *      strategy(board) with a fresh list of lists of ints; the result must be a one-character str in
 *      WASDwasd (else invalid_move); the move is played with game_move. The game ends as stuck after
 *      max_stuck_moves consecutive moves that changed nothing, as timeout once it has run longer than
 *      cfg->timeout (checked after each move; the worker kills a strategy that never returns), as
 *      exception / memory (MemoryError) when the call raises. One RW_REC_GAME record per game, then the
 *      pipe is closed.
 * The game itself is C (game2048): the strategy only ever sees copies of the board.
 */
#include <Python.h>
#include <marshal.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "game2048/game.h"
#include "rewards/pool_internal.h"

#ifndef GRPO2048_PYTHON_HOME
#define GRPO2048_PYTHON_HOME "/usr"
#endif

/* Modules a strategy may use (pre-imported: nothing else can be loaded inside the sandbox). */
static const char *const preload_modules[] = {
    "math", "cmath", "random", "itertools", "functools", "collections", "collections.abc", "heapq",
    "copy", "operator", "statistics", "bisect", "re", "string", "typing", "dataclasses", "enum", "time",
    "fractions", "decimal", "numbers", "array", "struct", "abc", "types", "contextlib", "ast", "gc",
};

static const char CHECKER_SOURCE[] =
    "import ast as _ast, builtins as _builtins, marshal as _marshal, sys as _sys\n"
    "_STDLIB = frozenset(_sys.stdlib_module_names)\n"
    "\n"
    "def _imports(tree):\n"
    "    for node in _ast.walk(tree):\n"
    "        if isinstance(node, _ast.Import):\n"
    "            for a in node.names:\n"
    "                yield a.name\n"
    "        elif isinstance(node, _ast.ImportFrom):\n"
    "            yield '.' * node.level + (node.module or '')\n"
    "        elif isinstance(node, _ast.Call) and node.args and isinstance(node.args[0], _ast.Constant) \\\n"
    "                and isinstance(node.args[0].value, str):\n"
    "            f = node.func\n"
    "            if (isinstance(f, _ast.Name) and f.id == '__import__') or \\\n"
    "                    (isinstance(f, _ast.Attribute) and f.attr == 'import_module'):\n"
    "                yield node.args[0].value\n"
    "\n"
    "def check(src):\n"
    "    \"\"\"(kind, message, code): kind 0 ok, 1 syntax error, 2 build failed, 3 banned import.\"\"\"\n"
    "    try:\n"
    "        tree = _ast.parse(src, '<strategy>', 'exec')\n"
    "        code = compile(tree, '<strategy>', 'exec', dont_inherit=True)\n"
    "    except SyntaxError as e:\n"
    "        return 1, 'syntax error: %s (line %s)' % (e.msg, e.lineno), None\n"
    "    except (ValueError, RecursionError, OverflowError) as e:\n"
    "        return 1, 'syntax error: %s: %s' % (type(e).__name__, e), None\n"
    "    banned = sorted({n for n in _imports(tree) if n.partition('.')[0] not in _STDLIB})\n"
    "    if banned:\n"
    "        return 3, 'banned import: ' + ', '.join(banned[:8]), None\n"
    "    body = tree.body\n"
    "    if len(body) != 1 or type(body[0]) is not _ast.FunctionDef or body[0].name != 'strategy':\n"
    "        what = ', '.join(type(s).__name__ + (' ' + s.name if hasattr(s, 'name') else '') for s in body[:4])\n"
    "        return 2, 'expected exactly one top-level statement, def strategy(board): (found %d: %s)' \\\n"
    "            % (len(body), what), None\n"
    "    fn = body[0]\n"
    "    a = fn.args\n"
    "    if len(a.posonlyargs) + len(a.args) != 1 or a.vararg or a.kwarg or a.kwonlyargs or a.defaults:\n"
    "        return 2, 'strategy must take exactly one positional parameter (board), without defaults', None\n"
    "    if fn.decorator_list:\n"
    "        return 2, 'strategy must not be decorated', None\n"
    "    return 0, '', code\n"
    "\n"
    "def check_marshal(src):\n"
    "    \"\"\"check(), with the code object marshalled (for the worker's checker process).\"\"\"\n"
    "    kind, msg, code = check(src)\n"
    "    return kind, msg, _marshal.dumps(code) if code is not None else b''\n"
    "\n"
    "def build(code):\n"
    "    ns = {'__builtins__': _builtins, '__name__': '__strategy__'}\n"
    "    exec(code, ns)\n"
    "    fn = ns.get('strategy')\n"
    "    if not callable(fn):\n"
    "        raise TypeError('strategy is not callable')\n"
    "    return fn\n";

/* Set in the zygote, inherited by every child through fork. */
static PyObject *check_fn;        /* checker.check */
static PyObject *build_fn;        /* checker.build */
static PyObject *check_marshal_fn;/* checker.check_marshal: for the worker's checker process */
static PyObject *random_seed_fn;  /* random.seed, bound before any strategy could replace it */

#define PY_FAIL(...) do { if (err && errlen) snprintf(err, errlen, __VA_ARGS__); return -1; } while (0)

/* Describes the pending Python exception as "<prefix><Type>: <message>" (truncated to n bytes) and
 * clears it. Returns 1 when it is a MemoryError. */
static int take_exception(char *buf, size_t n, const char *prefix) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    int is_memory = type && PyErr_GivenExceptionMatches(type, PyExc_MemoryError);
    const char *tname = type && PyType_Check(type) ? ((PyTypeObject *)type)->tp_name : "exception";
    const char *msg = "";
    PyObject *s = NULL;
    if (value && !is_memory) {
        s = PyObject_Str(value);   /* may run the strategy's own __str__: still under the deadline */
        if (s) msg = PyUnicode_AsUTF8(s);
        if (!msg) msg = "<unprintable>";
        PyErr_Clear();
    }
    snprintf(buf, n, "%s%s%s%s", prefix, tname, msg[0] ? ": " : "", msg);
    Py_XDECREF(s);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return is_memory;
}

static int warm_up(char *err, size_t errlen);

int pyrunner_init(char *err, size_t errlen) {
    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.install_signal_handlers = 0;
    config.site_import = 0;
    config.write_bytecode = 0;
    config.user_site_directory = 0;
    config.use_hash_seed = 1;
    config.hash_seed = 0;
    PyStatus st = PyConfig_SetBytesString(&config, &config.home, GRPO2048_PYTHON_HOME);
    if (!PyStatus_Exception(st)) st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st))
        PY_FAIL("CPython failed to start (home %s): %s%s%s", GRPO2048_PYTHON_HOME, st.func ? st.func : "",
                st.func ? ": " : "", st.err_msg ? st.err_msg : "exit requested");

    for (size_t i = 0; i < sizeof preload_modules / sizeof *preload_modules; i++) {
        PyObject *m = PyImport_ImportModule(preload_modules[i]);
        if (!m) {
            char msg[200];
            take_exception(msg, sizeof msg, "");
            PY_FAIL("CPython cannot import the standard module %s (home %s): %s", preload_modules[i],
                    GRPO2048_PYTHON_HOME, msg);
        }
        Py_DECREF(m);
    }
    if (PySys_SetObject("stdin", Py_None) || PySys_SetObject("stdout", Py_None) ||
        PySys_SetObject("stderr", Py_None))
        PY_FAIL("cannot reset sys.stdout");

    PyObject *globals = PyDict_New();
    if (!globals) PY_FAIL("out of memory");
    if (PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins()) != 0) PY_FAIL("out of memory");
    PyObject *r = PyRun_String(CHECKER_SOURCE, Py_file_input, globals, globals);
    if (!r) {
        char msg[200];
        take_exception(msg, sizeof msg, "");
        PY_FAIL("the strategy checker does not compile: %s", msg);
    }
    Py_DECREF(r);
    check_fn = PyDict_GetItemString(globals, "check");
    build_fn = PyDict_GetItemString(globals, "build");
    check_marshal_fn = PyDict_GetItemString(globals, "check_marshal");
    if (!check_fn || !build_fn || !check_marshal_fn) PY_FAIL("the strategy checker lacks check/build/check_marshal");
    Py_INCREF(check_fn);
    Py_INCREF(build_fn);
    Py_INCREF(check_marshal_fn);
    /* globals stays referenced by the functions; it is never freed (the zygote's lifetime). */

    PyObject *random = PyImport_ImportModule("random");
    random_seed_fn = random ? PyObject_GetAttrString(random, "seed") : NULL;
    Py_XDECREF(random);
    if (!random_seed_fn) PY_FAIL("random.seed not found");

    /* Run the whole per-job path a few times on a sample strategy (this also builds the game's N=4 row
     * tables), so that every child inherits it warm: lazily bound symbols resolved, the interpreter's
     * specialised bytecode and type caches filled. */
    if (warm_up(err, errlen) != 0) return -1;

    PyObject *gc = PyImport_ImportModule("gc");
    PyObject *fr = gc ? PyObject_CallMethod(gc, "collect", NULL) : NULL;
    Py_XDECREF(fr);
    fr = gc ? PyObject_CallMethod(gc, "freeze", NULL) : NULL;
    Py_XDECREF(gc);
    if (!fr) PY_FAIL("gc.freeze() failed");
    Py_DECREF(fr);
    return 0;
}

/* The child's minor page faults so far (getrusage is allowed by the filter); 0 when unavailable. */
static int64_t minor_faults(void) {
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? (int64_t)ru.ru_minflt : 0;
}

/* Writes one record; a failed write means the worker is gone (or the strategy broke the pipe): exit. */
static void send_record(int fd, uint64_t token, const rw_child_record *r) {
    rw_child_record rec = *r;
    rec.token = token;
    rec.minflt = minor_faults();
    rec.t_sent = rw_now();
    if (rw_write_all(fd, &rec, sizeof rec, 0) != 0) _exit(3);
}

/* The CHECK record: check is RW_CHECK_OK or the failed check's outcome, verdict the checker's
 * RW_VERDICT_*, msg the message; carries the child's start-up timestamps for the pool's statistics. */
static void send_check(int fd, uint64_t token, const rw_child_job *job, int32_t check, int32_t verdict,
                       const char *msg) {
    rw_child_record rec;
    memset(&rec, 0, sizeof rec);
    rec.kind = RW_REC_CHECK;
    rec.value = check;
    rec.verdict = verdict;
    rec.t_start = job->t_start;
    rec.t_sandboxed = job->t_sandboxed;
    rec.t_checked = rw_now();
    snprintf(rec.game.error, sizeof rec.game.error, "%s", msg);
    send_record(fd, token, &rec);
}

/* A fresh list-of-lists copy of the board: (N, N) Python ints. NULL on MemoryError. */
static PyObject *board_to_list(const game2048 *g) {
    PyObject *rows = PyList_New(g->n);
    if (!rows) return NULL;
    for (int r = 0; r < g->n; r++) {
        PyObject *row = PyList_New(g->n);
        if (!row) { Py_DECREF(rows); return NULL; }
        PyList_SET_ITEM(rows, r, row);
        for (int c = 0; c < g->n; c++) {
            PyObject *v = PyLong_FromUnsignedLong(g->cells[r * g->n + c]);
            if (!v) { Py_DECREF(rows); return NULL; }
            PyList_SET_ITEM(row, c, v);
        }
    }
    return rows;
}

/* The move a strategy returned ('W','A','S','D'), or 0 with a description in msg. Reads the str's
 * characters directly (no method of a str subclass runs); repr only of built-in scalar types. */
static char parse_move(PyObject *r, char *msg, size_t n) {
    if (PyUnicode_Check(r) && PyUnicode_GET_LENGTH(r) == 1) {
        Py_UCS4 ch = PyUnicode_READ_CHAR(r, 0);
        char mv = ch < 128 ? game_parse_move((int)ch) : 0;
        if (mv) return mv;
    }
    if (PyUnicode_CheckExact(r) || PyLong_CheckExact(r) || PyFloat_CheckExact(r) || PyBool_Check(r) ||
        r == Py_None) {
        /* A long string is shown by its first characters only (no repr of megabytes). */
        int cut = PyUnicode_CheckExact(r) && PyUnicode_GET_LENGTH(r) > 64;
        PyObject *v = cut ? PyUnicode_Substring(r, 0, 64) : (Py_INCREF(r), r);
        PyObject *s = v ? PyObject_Repr(v) : NULL;
        const char *t = s ? PyUnicode_AsUTF8(s) : NULL;
        if (t) snprintf(msg, n, "invalid move: strategy returned %.60s%s", t, cut || strlen(t) > 60 ? "..." : "");
        else snprintf(msg, n, "invalid move: strategy returned a %s", Py_TYPE(r)->tp_name);
        PyErr_Clear();
        Py_XDECREF(s);
        Py_XDECREF(v);
    } else {
        snprintf(msg, n, "invalid move: strategy returned a %.60s, expected one of \"W\", \"A\", \"S\", \"D\"",
                 Py_TYPE(r)->tp_name);
    }
    return 0;
}

/* Plays one game; fills *out (outcome, score, tile, moves, seconds, error). */
static void play_game(const reward_config *cfg, PyObject *fn, uint64_t seed, reward_game *out) {
    memset(out, 0, sizeof *out);
    out->seed = seed;
    double t0 = rw_now();
    game2048 g;
    if (game_init(&g, cfg->board_size, cfg->target, cfg->probability_fours, seed) != 0)
        RW_ABORT("game_init rejected a validated config (size %d, target %u)", cfg->board_size, cfg->target);
    int outcome = -1;
    PyObject *pyseed = PyLong_FromUnsignedLongLong(seed);
    PyObject *sr = pyseed ? PyObject_CallOneArg(random_seed_fn, pyseed) : NULL;
    Py_XDECREF(pyseed);
    if (!sr) outcome = take_exception(out->error, sizeof out->error, "exception: ") ? OUTCOME_MEMORY
                                                                                     : OUTCOME_EXCEPTION;
    Py_XDECREF(sr);
    int unchanged = 0;
    while (outcome < 0 && g.state == GAME_ONGOING) {
        PyObject *board = board_to_list(&g);
        PyObject *r = board ? PyObject_CallOneArg(fn, board) : NULL;
        Py_XDECREF(board);
        if (!r) {
            outcome = take_exception(out->error, sizeof out->error, "exception: ") ? OUTCOME_MEMORY
                                                                                   : OUTCOME_EXCEPTION;
            if (outcome == OUTCOME_MEMORY)
                snprintf(out->error, sizeof out->error, "memory: MemoryError (limit %zu MiB)",
                         cfg->memory_limit >> 20);
            break;
        }
        char mv = parse_move(r, out->error, sizeof out->error);
        Py_DECREF(r);
        if (!mv) {
            game_fail(&g);
            outcome = OUTCOME_INVALID_MOVE;
            break;
        }
        if (game_move(&g, mv) == 1) unchanged = 0;
        else if (++unchanged >= cfg->max_stuck_moves) {
            outcome = OUTCOME_STUCK;
            snprintf(out->error, sizeof out->error, "stuck: the board did not change for %d moves",
                     cfg->max_stuck_moves);
            break;
        }
        if (g.state == GAME_ONGOING && rw_now() - t0 > cfg->timeout) {
            outcome = OUTCOME_TIMEOUT;
            snprintf(out->error, sizeof out->error, "timeout: game took longer than %g s", cfg->timeout);
            break;
        }
    }
    if (outcome < 0) outcome = g.state == GAME_SUCCESS ? OUTCOME_SUCCESS : OUTCOME_FAILED;
    out->outcome = (reward_outcome)outcome;
    out->score = g.score;
    out->max_tile = g.max_tile;
    out->moves = g.moves;
    out->seconds = rw_now() - t0;
}

/* A typical strategy for warm_up: loops, comprehensions, closures, slicing, builtins. */
static const char WARM_SOURCE[] =
    "def strategy(board):\n"
    "    n = len(board)\n"
    "    def slide(row):\n"
    "        tiles = [v for v in row if v]\n"
    "        out, i = [], 0\n"
    "        while i < len(tiles):\n"
    "            if i + 1 < len(tiles) and tiles[i] == tiles[i + 1]:\n"
    "                out.append(tiles[i] * 2)\n"
    "                i += 2\n"
    "            else:\n"
    "                out.append(tiles[i])\n"
    "                i += 1\n"
    "        return out + [0] * (n - len(out))\n"
    "    cols = [[board[r][c] for r in range(n)] for c in range(n)]\n"
    "    for move in ('S', 'A', 'D', 'W'):\n"
    "        if move == 'A' and any(slide(r) != r for r in board):\n"
    "            return move\n"
    "        if move == 'D' and any(slide(r[::-1])[::-1] != r for r in board):\n"
    "            return move\n"
    "        if move == 'S' and any(slide(c[::-1])[::-1] != c for c in cols):\n"
    "            return move\n"
    "        if move == 'W' and any(slide(c) != c for c in cols):\n"
    "            return move\n"
    "    return max('WASD', key=lambda m: sum(map(sum, board)) % (ord(m) % 7 + 1))\n";

/* Checks, marshals, unmarshals, builds and plays WARM_SOURCE a few times (in the zygote, before
 * gc.freeze). Returns 0, or -1 + err when the sample does not pass (a broken CPython). */
static int warm_up(char *err, size_t errlen) {
    reward_config cfg;
    reward_config_defaults(&cfg);
    cfg.target = 128;
    cfg.timeout = 5.0;
    for (int round = 0; round < 3; round++) {
        PyObject *src = PyUnicode_FromString(WARM_SOURCE);
        PyObject *res = src ? PyObject_CallOneArg(check_marshal_fn, src) : NULL;
        Py_XDECREF(src);
        if (!res || PyLong_AsLong(PyTuple_GET_ITEM(res, 0)) != RW_VERDICT_OK) {
            char msg[200] = "";
            if (PyErr_Occurred()) take_exception(msg, sizeof msg, "");
            Py_XDECREF(res);
            PY_FAIL("the warm-up strategy does not pass the checker: %s", msg);
        }
        PyObject *bytes = PyTuple_GET_ITEM(res, 2);
        PyObject *code = PyMarshal_ReadObjectFromString(PyBytes_AS_STRING(bytes), PyBytes_GET_SIZE(bytes));
        Py_DECREF(res);
        PyObject *fn = code ? PyObject_CallOneArg(build_fn, code) : NULL;
        Py_XDECREF(code);
        if (!fn) {
            char msg[200];
            take_exception(msg, sizeof msg, "");
            PY_FAIL("the warm-up strategy does not build: %s", msg);
        }
        reward_game game;
        play_game(&cfg, fn, (uint64_t)round, &game);
        Py_DECREF(fn);
        if (game.outcome != OUTCOME_SUCCESS && game.outcome != OUTCOME_FAILED)
            PY_FAIL("the warm-up game ended %s: %s", reward_outcome_name(game.outcome), game.error);
    }
    return 0;
}

/* Checks and builds job's source: returns the strategy function, or NULL after sending the failed CHECK
 * record. */
static PyObject *check_and_build(const rw_child_job *job, int fd, uint64_t token, int32_t *verdict) {
    char msg[REWARD_GAME_ERROR_LEN];
    PyObject *code;
    *verdict = RW_VERDICT_NONE;
    if (job->code) {
        /* The worker's checker passed this source and compiled it: the same code object, unmarshalled
         * (a fraction of the page faults of parsing and compiling here). */
        code = PyMarshal_ReadObjectFromString(job->code, (Py_ssize_t)job->code_len);
        if (code && !PyCode_Check(code)) {
            Py_DECREF(code);
            code = NULL;
            PyErr_SetString(PyExc_TypeError, "the checker's code is not a code object");
        }
        if (!code) {
            take_exception(msg, sizeof msg, "build failed: ");
            send_check(fd, token, job, OUTCOME_BUILD_FAILED, RW_VERDICT_NONE, msg);
            return NULL;
        }
        *verdict = RW_VERDICT_OK;
    } else {
        PyObject *src = PyUnicode_DecodeUTF8(job->source, (Py_ssize_t)job->source_len, "strict");
        if (!src) {
            PyErr_Clear();
            send_check(fd, token, job, OUTCOME_SYNTAX_ERROR, RW_VERDICT_SYNTAX,
                       "syntax error: the source is not valid UTF-8");
            return NULL;
        }
        PyObject *res = PyObject_CallOneArg(check_fn, src);
        Py_DECREF(src);
        if (!res) {
            take_exception(msg, sizeof msg, "check failed: ");
            send_check(fd, token, job, OUTCOME_BUILD_FAILED, RW_VERDICT_NONE, msg);
            return NULL;
        }
        long kind = PyLong_AsLong(PyTuple_GET_ITEM(res, 0));
        const char *text = PyUnicode_AsUTF8(PyTuple_GET_ITEM(res, 1));
        if (kind != RW_VERDICT_OK) {
            int32_t check = kind == RW_VERDICT_SYNTAX   ? OUTCOME_SYNTAX_ERROR
                            : kind == RW_VERDICT_BANNED ? OUTCOME_BANNED_IMPORT
                                                        : OUTCOME_BUILD_FAILED;
            send_check(fd, token, job, check, text ? (int32_t)kind : RW_VERDICT_NONE, text ? text : "check failed");
            Py_DECREF(res);
            return NULL;
        }
        *verdict = RW_VERDICT_OK;
        code = PyTuple_GET_ITEM(res, 2);
        Py_INCREF(code);
        Py_DECREF(res);
    }
    PyObject *fn = PyObject_CallOneArg(build_fn, code);
    Py_DECREF(code);
    if (!fn) {
        take_exception(msg, sizeof msg, "build failed: ");
        send_check(fd, token, job, OUTCOME_BUILD_FAILED, *verdict, msg);
        return NULL;
    }
    return fn;
}

void pyrunner_run(const rw_child_job *job, int fd, uint64_t token) {
    int32_t verdict;
    PyObject *fn = check_and_build(job, fd, token, &verdict);
    if (fn) {
        send_check(fd, token, job, RW_CHECK_OK, verdict, "");
        for (int g = job->first_game; g < job->cfg->games_per_strategy; g++) {
            rw_child_record rec;
            memset(&rec, 0, sizeof rec);
            rec.kind = RW_REC_GAME;
            rec.value = g;
            play_game(job->cfg, fn, game_seed_mix(job->seed, (uint64_t)g, 0), &rec.game);
            send_record(fd, token, &rec);
        }
    }
    /* Everything is reported: closing the pipe wakes the worker now, before this process's teardown
     * (no strategy code runs past this point). */
    close(fd);
}

void pyrunner_checker_main(int in_fd, int out_fd, uint64_t token) {
    static char src[REWARD_MAX_SOURCE];
    for (;;) {
        rw_check_request rq;
        if (rw_read_all(in_fd, &rq, sizeof rq) != 1 || rq.magic != RW_CHECK_MAGIC || rq.len > REWARD_MAX_SOURCE ||
            rw_read_all(in_fd, src, rq.len) != 1)
            _exit(0);   /* EOF (the worker is done with us) or a broken request */
        double t0 = rw_now();
        rw_check_response rs;
        memset(&rs, 0, sizeof rs);
        rs.token = token;
        rs.verdict = RW_VERDICT_NONE;
        const char *bytes = NULL;
        PyObject *res = NULL;
        PyObject *s = PyUnicode_DecodeUTF8(src, (Py_ssize_t)rq.len, "strict");
        if (!s) {
            PyErr_Clear();
            rs.verdict = RW_VERDICT_SYNTAX;
            snprintf(rs.msg, sizeof rs.msg, "syntax error: the source is not valid UTF-8");
        } else {
            res = PyObject_CallOneArg(check_marshal_fn, s);
            Py_DECREF(s);
            if (!res) {
                take_exception(rs.msg, REWARD_GAME_ERROR_LEN, "check failed: ");
            } else {
                long kind = PyLong_AsLong(PyTuple_GET_ITEM(res, 0));
                const char *text = PyUnicode_AsUTF8(PyTuple_GET_ITEM(res, 1));
                PyObject *code = PyTuple_GET_ITEM(res, 2);
                if (!text || kind < RW_VERDICT_OK || kind > RW_VERDICT_BANNED) {
                    PyErr_Clear();
                    snprintf(rs.msg, REWARD_GAME_ERROR_LEN, "check failed: bad checker result");
                } else if (kind == RW_VERDICT_OK && (size_t)PyBytes_GET_SIZE(code) > RW_MAX_CODE) {
                    snprintf(rs.msg, REWARD_GAME_ERROR_LEN, "the compiled code is larger than %u bytes", RW_MAX_CODE);
                } else {
                    rs.verdict = (int32_t)kind;
                    snprintf(rs.msg, REWARD_GAME_ERROR_LEN, "%s", text);
                    if (kind == RW_VERDICT_OK) {
                        bytes = PyBytes_AS_STRING(code);
                        rs.code_len = (uint32_t)PyBytes_GET_SIZE(code);
                    }
                }
            }
        }
        rs.seconds = rw_now() - t0;
        if (rw_write_all(out_fd, &rs, sizeof rs, 0) != 0 || (rs.code_len && rw_write_all(out_fd, bytes, rs.code_len, 0) != 0))
            _exit(3);
        Py_XDECREF(res);
    }
}
