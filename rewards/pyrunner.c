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
 *   3. one RW_ANS_CHECK answer; then, for each board the worker sends: random.seed(py_seed) when it is
 *      a game's first board (py_seed is a one-way function of the game's seed, never the seed itself),
 *      strategy(board) with a fresh list of lists of ints, and one answer: the move when the result is a
 *      one-character str in WASDwasd, else invalid (its description), or the exception's text
 *      (MemoryError: memory).
 * The child holds no game: the worker (worker.c) owns the board, the spawn RNG, the moves, the clock
 * and the outcome, so nothing the strategy does to this process's memory can change a result.
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

/* Writes one answer; a failed write means the worker is gone (or the strategy broke the pipe): exit. */
static void send_answer(int fd, const rw_answer *a) {
    if (rw_write_all(fd, a, sizeof *a, 0) != 0) _exit(3);
}

/* The CHECK answer: check is RW_CHECK_OK or the failed check's outcome, verdict the checker's
 * RW_VERDICT_*, msg the message; carries the child's start-up timestamps for the pool's statistics. */
static void send_check(int fd, const rw_child_job *job, int32_t check, int32_t verdict, const char *msg) {
    rw_answer a;
    memset(&a, 0, sizeof a);
    a.kind = RW_ANS_CHECK;
    a.value = check;
    a.verdict = verdict;
    a.t_start = job->t_start;
    a.t_sandboxed = job->t_sandboxed;
    a.t_checked = rw_now();
    a.minflt = minor_faults();
    snprintf(a.msg, sizeof a.msg, "%s", msg);
    send_answer(fd, &a);
}

/* A fresh list-of-lists copy of a board: cells (n, n) row-major → n lists of n Python ints. NULL on
 * MemoryError. */
static PyObject *board_to_list(const uint32_t *cells, int n) {
    PyObject *rows = PyList_New(n);
    if (!rows) return NULL;
    for (int r = 0; r < n; r++) {
        PyObject *row = PyList_New(n);
        if (!row) { Py_DECREF(rows); return NULL; }
        PyList_SET_ITEM(rows, r, row);
        for (int c = 0; c < n; c++) {
            PyObject *v = PyLong_FromUnsignedLong(cells[r * n + c]);
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

/* One call of the strategy on a board (and, for a game's first board, random.seed(py_seed) before it):
 * fills *a with RW_ANS_MOVE and the move, or with the answer that ends the game (INVALID, EXCEPTION,
 * MEMORY) and its message. memory_mib only words the MemoryError message. */
static void answer_board(PyObject *fn, const rw_board_msg *b, size_t memory_mib, rw_answer *a) {
    memset(a, 0, sizeof *a);
    if (b->new_game) {
        PyObject *pyseed = PyLong_FromUnsignedLongLong(b->py_seed);
        PyObject *sr = pyseed ? PyObject_CallOneArg(random_seed_fn, pyseed) : NULL;
        Py_XDECREF(pyseed);
        if (!sr) {
            a->kind = take_exception(a->msg, sizeof a->msg, "exception: ") ? RW_ANS_MEMORY : RW_ANS_EXCEPTION;
            return;
        }
        Py_DECREF(sr);
    }
    PyObject *board = board_to_list(b->cells, b->n);
    PyObject *r = board ? PyObject_CallOneArg(fn, board) : NULL;
    Py_XDECREF(board);
    if (!r) {
        a->kind = take_exception(a->msg, sizeof a->msg, "exception: ") ? RW_ANS_MEMORY : RW_ANS_EXCEPTION;
        if (a->kind == RW_ANS_MEMORY)
            snprintf(a->msg, sizeof a->msg, "memory: MemoryError (limit %zu MiB)", memory_mib);
        return;
    }
    char mv = parse_move(r, a->msg, sizeof a->msg);
    Py_DECREF(r);
    if (!mv) {
        a->kind = RW_ANS_INVALID;
        return;
    }
    a->kind = RW_ANS_MOVE;
    a->value = mv;
}

/* Plays one game in this process (the zygote's warm-up only: jobs are played by the worker, which owns
 * the game). Returns the game's state at the end, or -1 when the strategy failed (message in err). */
static int warm_game(PyObject *fn, const reward_config *cfg, uint64_t seed, char *err, size_t errlen) {
    game2048 g;
    if (game_init(&g, cfg->board_size, cfg->target, cfg->probability_fours, seed) != 0) return -1;
    rw_board_msg b;
    memset(&b, 0, sizeof b);
    b.kind = RW_BOARD_PLAY;
    b.new_game = 1;
    b.py_seed = rw_python_seed(seed);
    b.n = g.n;
    while (g.state == GAME_ONGOING && g.moves < 5000) {
        memcpy(b.cells, g.cells, sizeof g.cells);
        rw_answer a;
        answer_board(fn, &b, cfg->memory_limit >> 20, &a);
        b.new_game = 0;
        if (a.kind != RW_ANS_MOVE) {
            snprintf(err, errlen, "%s", a.msg);
            return -1;
        }
        game_move(&g, a.value);
    }
    return (int)g.state;
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
        char msg[REWARD_GAME_ERROR_LEN] = "";
        int st = warm_game(fn, &cfg, (uint64_t)round, msg, sizeof msg);
        Py_DECREF(fn);
        if (st != GAME_SUCCESS && st != GAME_FAILED) PY_FAIL("the warm-up game did not end: %s", msg);
    }
    return 0;
}

/* Checks and builds job's source: returns the strategy function, or NULL after sending the failed CHECK
 * record. */
static PyObject *check_and_build(const rw_child_job *job, int fd, int32_t *verdict) {
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
            send_check(fd, job, OUTCOME_BUILD_FAILED, RW_VERDICT_NONE, msg);
            return NULL;
        }
        *verdict = RW_VERDICT_OK;
    } else {
        PyObject *src = PyUnicode_DecodeUTF8(job->source, (Py_ssize_t)job->source_len, "strict");
        if (!src) {
            PyErr_Clear();
            send_check(fd, job, OUTCOME_SYNTAX_ERROR, RW_VERDICT_SYNTAX,
                       "syntax error: the source is not valid UTF-8");
            return NULL;
        }
        PyObject *res = PyObject_CallOneArg(check_fn, src);
        Py_DECREF(src);
        if (!res) {
            take_exception(msg, sizeof msg, "check failed: ");
            send_check(fd, job, OUTCOME_BUILD_FAILED, RW_VERDICT_NONE, msg);
            return NULL;
        }
        long kind = PyLong_AsLong(PyTuple_GET_ITEM(res, 0));
        const char *text = PyUnicode_AsUTF8(PyTuple_GET_ITEM(res, 1));
        if (kind != RW_VERDICT_OK) {
            int32_t check = kind == RW_VERDICT_SYNTAX   ? OUTCOME_SYNTAX_ERROR
                            : kind == RW_VERDICT_BANNED ? OUTCOME_BANNED_IMPORT
                                                        : OUTCOME_BUILD_FAILED;
            send_check(fd, job, check, text ? (int32_t)kind : RW_VERDICT_NONE, text ? text : "check failed");
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
        send_check(fd, job, OUTCOME_BUILD_FAILED, *verdict, msg);
        return NULL;
    }
    return fn;
}

void pyrunner_run(const rw_child_job *job, int in_fd, int out_fd) {
    int32_t verdict;
    PyObject *fn = check_and_build(job, out_fd, &verdict);
    if (!fn) return;
    send_check(out_fd, job, RW_CHECK_OK, verdict, "");
    size_t memory_mib = job->cfg->memory_limit >> 20;
    for (;;) {
        rw_board_msg b;
        if (rw_read_all(in_fd, &b, sizeof b) != 1 || b.kind != RW_BOARD_PLAY || b.n < GAME_MIN_SIZE ||
            b.n > GAME_MAX_SIZE)
            return;   /* RW_BOARD_END, or the worker is gone */
        rw_answer a;
        answer_board(fn, &b, memory_mib, &a);
        send_answer(out_fd, &a);
    }
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
