/*
 * rewards/pyrunner.c: the Python side of the reward pool — starting CPython once in the zygote, and, in
 * each sandboxed job child, checking a strategy's source, building the function and playing the games.
 *
 * Zygote (pyrunner_init): CPython is started isolated from the environment (no PYTHONPATH, no user
 * site, no site module), with hash randomisation off (hash seed 0, so set iteration order — and thus
 * a strategy's behaviour — is the same in every run), without signal handlers and without writing
 * bytecode. Its home is GRPO2048_PYTHON_HOME ("/usr": Debian's libpython3.11 from pkg-config
 * python3-embed), never a python3 found on PATH. It pre-imports the allowed standard-library modules
 * (inside the sandbox no file can be opened, so these are the only modules a strategy can import, plus
 * CPython's built-in ones), sets sys.stdin/stdout/stderr to None (print() becomes a no-op: the child
 * has no fds to print to), compiles the checker below, warms the game's N=4 tables and freezes the heap
 * (gc.freeze) so forked children share it copy-on-write.
 *
 * Child (pyrunner_run), after sandbox_enter:
 *   1. check (Python, CHECKER_SOURCE): UTF-8, ast.parse + compile (syntax_error); an AST walk over every
 *      import (`import x`, `from x import y`, `__import__("x")`, `importlib.import_module("x")`) whose
 *      root module is not in sys.stdlib_module_names, relative imports included (banned_import); exactly
 *      one top-level statement, a plain `def strategy(board)` with one positional parameter, no
 *      defaults, no decorators (build_failed);
 *   2. build: exec in a fresh dict namespace with the normal builtins; an exception is build_failed;
 *   3. one RW_REC_CHECK record, then per game: random.seed(game seed); until the game ends, call
 *      strategy(board) with a fresh list of lists of ints; the result must be a one-character str in
 *      WASDwasd (else invalid_move); the move is played with game_move. The game ends as stuck after
 *      max_stuck_moves consecutive moves that changed nothing, as timeout once it has run longer than
 *      cfg->timeout (checked after each move; the worker kills a strategy that never returns), as
 *      exception / memory (MemoryError) when the call raises. One RW_REC_GAME record per game.
 * The game itself is C (game2048): the strategy only ever sees copies of the board.
 */
#include <Python.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
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
    "import ast as _ast, builtins as _builtins, sys as _sys\n"
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
    if (!check_fn || !build_fn) PY_FAIL("the strategy checker lacks check/build");
    Py_INCREF(check_fn);
    Py_INCREF(build_fn);
    /* globals stays referenced by the functions; it is never freed (the zygote's lifetime). */

    PyObject *random = PyImport_ImportModule("random");
    random_seed_fn = random ? PyObject_GetAttrString(random, "seed") : NULL;
    Py_XDECREF(random);
    if (!random_seed_fn) PY_FAIL("random.seed not found");

    /* Build the game's N=4 row tables once here, so children inherit them instead of rebuilding. */
    game2048 g;
    if (game_init(&g, 4, 2048, 0.1, 1) == 0) {
        static const char moves[] = "WASD";
        for (int i = 0; i < 8; i++) game_move(&g, moves[i % 4]);
    }

    PyObject *gc = PyImport_ImportModule("gc");
    PyObject *fr = gc ? PyObject_CallMethod(gc, "collect", NULL) : NULL;
    Py_XDECREF(fr);
    fr = gc ? PyObject_CallMethod(gc, "freeze", NULL) : NULL;
    Py_XDECREF(gc);
    if (!fr) PY_FAIL("gc.freeze() failed");
    Py_DECREF(fr);
    return 0;
}

/* Writes one record; a failed write means the worker is gone (or the strategy broke the pipe): exit. */
static void send_record(int fd, uint64_t token, uint32_t kind, int32_t value, const reward_game *g) {
    rw_child_record rec;
    memset(&rec, 0, sizeof rec);
    rec.token = token;
    rec.kind = kind;
    rec.value = value;
    if (g) rec.game = *g;
    if (rw_write_all(fd, &rec, sizeof rec, 0) != 0) _exit(3);
}

static void send_check(int fd, uint64_t token, int32_t check, const char *msg) {
    reward_game g;
    memset(&g, 0, sizeof g);
    snprintf(g.error, sizeof g.error, "%s", msg);
    send_record(fd, token, RW_REC_CHECK, check, &g);
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
        PyObject *s = PyObject_Repr(r);
        const char *t = s ? PyUnicode_AsUTF8(s) : NULL;
        if (t) snprintf(msg, n, "invalid move: strategy returned %.60s%s", t, strlen(t) > 60 ? "..." : "");
        else snprintf(msg, n, "invalid move: strategy returned a %s", Py_TYPE(r)->tp_name);
        PyErr_Clear();
        Py_XDECREF(s);
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

void pyrunner_run(const rw_child_job *job, int fd, uint64_t token) {
    char msg[REWARD_GAME_ERROR_LEN];
    PyObject *src = PyUnicode_DecodeUTF8(job->source, (Py_ssize_t)job->source_len, "strict");
    if (!src) {
        PyErr_Clear();
        send_check(fd, token, OUTCOME_SYNTAX_ERROR, "syntax error: the source is not valid UTF-8");
        return;
    }
    PyObject *res = PyObject_CallOneArg(check_fn, src);
    Py_DECREF(src);
    if (!res) {
        take_exception(msg, sizeof msg, "check failed: ");
        send_check(fd, token, OUTCOME_BUILD_FAILED, msg);
        return;
    }
    long kind = PyLong_AsLong(PyTuple_GET_ITEM(res, 0));
    const char *text = PyUnicode_AsUTF8(PyTuple_GET_ITEM(res, 1));
    if (kind != 0) {
        int32_t check = kind == 1 ? OUTCOME_SYNTAX_ERROR : kind == 3 ? OUTCOME_BANNED_IMPORT : OUTCOME_BUILD_FAILED;
        send_check(fd, token, check, text ? text : "check failed");
        Py_DECREF(res);
        return;
    }
    PyObject *fn = PyObject_CallOneArg(build_fn, PyTuple_GET_ITEM(res, 2));
    Py_DECREF(res);
    if (!fn) {
        take_exception(msg, sizeof msg, "build failed: ");
        send_check(fd, token, OUTCOME_BUILD_FAILED, msg);
        return;
    }
    send_check(fd, token, RW_CHECK_OK, "");
    for (int g = job->first_game; g < job->cfg->games_per_strategy; g++) {
        reward_game game;
        play_game(job->cfg, fn, game_seed_mix(job->seed, (uint64_t)g, 0), &game);
        send_record(fd, token, RW_REC_GAME, g, &game);
    }
}
