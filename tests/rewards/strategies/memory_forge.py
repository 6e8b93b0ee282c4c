def strategy(board):
    # Raw memory access without ctypes (CPython 3.11): a hand-built code object whose LOAD_CONST indexes
    # past its constants returns a forged bytearray that spans the whole address space. With it, the
    # strategy (1) proves it can read and write any byte of its process, (2) looks for the game's seed
    # in its memory (raw, and as a Python int's 30-bit digits) and (3) tries to rewrite the game. In a
    # sandbox where the worker owns the game there is no game and no seed here: it must play honestly.
    import struct, sys, gc, types
    d = strategy.__dict__
    if "mode" not in d:
        d["mode"] = "X"          # "X": no memory access (the test fails: the attack no longer works)
        mem = None
        fake = struct.pack("<7q", 1 << 40, id(bytearray), 1 << 62, 1 << 62, 0, 0, 0)
        consts = (None,)
        keep = []
        for _ in range(100000):
            ptr = struct.pack("<Q", id(fake) + 32)   # ob_sval of a bytes object is at +32
            keep.append(ptr)
            k = id(ptr) + 32 - (id(consts) + 24)     # tuple items start at +24
            if k > 0 and k % 8 == 0 and k // 8 < (1 << 31):
                k //= 8
                code = bytes([151, 0, 144, (k >> 24) & 255, 144, (k >> 16) & 255, 144, (k >> 8) & 255,
                              100, k & 255, 83, 0])
                f = types.FunctionType((lambda: None).__code__.replace(co_code=code, co_consts=consts), {})
                mem = f()
                break
        if isinstance(mem, bytearray):
            probe = object()
            rd = int.from_bytes(mem[id(probe) + 8:id(probe) + 16], "little") == id(object)
            victim = bytes(8)
            mem[id(victim) + 32] = 65
            if rd and victim[0] == 65:
                d["mode"] = "W"
                # (2) the seeds of the games this test plays (seed 7, game 0 and 1), masked so that
                # this code never holds them as ints or bytes until the comparison patterns are built.
                masked = [0x1460A1807A6BD803, 0xB6FBC38A0C134A22]
                pats = []
                for m in masked:
                    raw = bytes(a ^ b for a, b in zip(m.to_bytes(8, "little"), (0x2F1E9B3D5A7C4E61).to_bytes(8, "little")))
                    pats.append(raw)
                    v = int.from_bytes(raw, "little")
                    digits = b"".join(((v >> (30 * i)) & ((1 << 30) - 1)).to_bytes(4, "little") for i in range(3))
                    del v
                    pats.append(digits)
                own = [(id(p), id(p) + 64) for p in pats]
                # Every pymalloc pool (16 or 4 KiB, mapped whole) that holds a small object reachable
                # from the collector, recognised by its header (read byte by byte: a pool's szidx and
                # maxnextoffset agree), so that no read strays outside pymalloc's arenas.
                def u32(a):
                    return mem[a] | mem[a + 1] << 8 | mem[a + 2] << 16 | mem[a + 3] << 24
                pools = {}
                for o in gc.get_objects():
                    for x in [o] + gc.get_referents(o):
                        if sys.getsizeof(x) > 512:
                            continue
                        for size in (16384, 4096):
                            base = id(x) & ~(size - 1)
                            if base in pools:
                                break
                            szidx, maxnext = u32(base + 36), u32(base + 44)
                            if szidx < 32 and maxnext == size - (szidx + 1) * 16:
                                pools[base] = size
                                break
                found = 0
                pages = pools
                for pg, size in pools.items():
                    chunk = bytes(mem[pg:pg + size])
                    for p in pats:
                        i = chunk.find(p)
                        while i >= 0:
                            a = pg + i
                            if not any(lo <= a < hi for lo, hi in own):
                                found += 1
                            i = chunk.find(p, i + 1)
                d["pages"] = len(pages)
                if found:
                    d["mode"] = "S"   # a seed was in reach: the test fails
    return d["mode"]
