/*
 * tests/rewards/test_extract.c: reward_extract_strategy — the first fenced block, the python/py tag,
 * whitespace, the required `def strategy(board):` start, and the buffer-size contract.
 */
#include <string.h>

#include "rewards/rewards.h"
#include "tests/testing.h"

static char out[4096];

/* Extracts and compares with want (NULL: expect rc). */
static void expect(const char *completion, int rc, const char *want) {
    memset(out, 'Z', sizeof out);
    int r = reward_extract_strategy(completion, out, sizeof out);
    CHECK_MSG(r == rc, "rc %d, expected %d for: %s", r, rc, completion);
    if (want && r == 0) CHECK_MSG(!strcmp(out, want), "got [%s], expected [%s]", out, want);
}

int main(void) {
    const char *code = "def strategy(board):\n    return \"W\"";
    /* The usual shapes. */
    expect("```python\ndef strategy(board):\n    return \"W\"\n```", 0, code);
    expect("```py\ndef strategy(board):\n    return \"W\"\n```", 0, code);
    expect("```\ndef strategy(board):\n    return \"W\"\n```", 0, code);
    expect("```python   \n\n  def strategy(board):\n    return \"W\"\n\n```", 0, code);
    expect("Sure! Here it is:\n```python\ndef strategy(board):\n    return \"W\"\n```\nThis moves up.", 0, code);
    expect("```python\r\ndef strategy(board):\r\n    return \"W\"\r\n```", 0, "def strategy(board):\r\n    return \"W\"");
    /* Only the first block counts, even when a later one is the function. */
    expect("```python\ndef strategy(board):\n    return \"A\"\n```\n```python\ndef strategy(board):\n    return \"W\"\n```",
           0, "def strategy(board):\n    return \"A\"");
    expect("```text\nno code\n```\n```python\ndef strategy(board):\n    return \"W\"\n```", -1, NULL);
    /* No block, one fence only, empty block. */
    expect("def strategy(board):\n    return \"W\"\n", -1, NULL);
    expect("```python\ndef strategy(board):\n    return \"W\"\n", -1, NULL);
    expect("``````", -1, NULL);
    expect("", -1, NULL);
    expect(NULL, -1, NULL);
    /* Must start with def strategy(board): — imports first, another name, other parameters. */
    expect("```python\nimport math\ndef strategy(board):\n    return \"W\"\n```", -1, NULL);
    expect("```python\ndef strat(board):\n    return \"W\"\n```", -1, NULL);
    expect("```python\ndef strategy(b):\n    return \"W\"\n```", -1, NULL);
    expect("```python\ndef strategy(board) -> str:\n    return \"W\"\n```", -1, NULL);
    /* A tag must be a whole word: ```pythonic is not dropped (and then the block does not start right). */
    expect("```pythonic\ndef strategy(board):\n    return \"W\"\n```", -1, NULL);
    /* The shortest valid block. */
    expect("```def strategy(board):```", 0, "def strategy(board):");
    /* Too small a buffer: -2, and exactly enough: 0. */
    const char *c = "```python\ndef strategy(board):\n    return \"W\"\n```";
    char small[16];
    CHECK_EQ_INT(reward_extract_strategy(c, small, sizeof small), -2);
    char exact[64];
    CHECK_EQ_INT(reward_extract_strategy(c, exact, strlen(code) + 1), 0);
    CHECK(!strcmp(exact, code));
    CHECK_EQ_INT(reward_extract_strategy(c, exact, strlen(code)), -2);
    return TEST_DONE();
}
