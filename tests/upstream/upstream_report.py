"""ci/upstream's bookkeeping: reads the outcome files upstream_outcomes.py
writes and says what is left to run, or compares two passes.

    python upstream_report.py remaining OUTCOMES...
        ids collected but not finished, one a line; the test that was
        running when the run stopped (started, no result) is recorded as
        "hung" in the last file first, and is not listed.
    python upstream_report.py ids OUTCOMES KIND...
        the ids whose outcome is one of KIND (passed, failed, ...).
    python upstream_report.py compare STOCK INSTALLED ALLOWLIST \\
            [--rerun-installed FILE] [--rerun-stock FILE]
        the comparison ci/upstream prints; exit 1 when a test passes stock,
        fails with rpyc_rs installed (again on the rerun, if there was one),
        and is not in ALLOWLIST.

An outcome file may hold several runs of the same pass (ci/upstream resumes
a pass after a hang); for each id the last result counts.
"""

import fnmatch
import sys
from collections import Counter

OK = ("passed", "skipped")
BAD = ("failed", "error", "hung")


def read(path):
    """(collected ids in order, {id: (outcome, reason)}, [collect errors])."""
    collected, results, started, errors = [], {}, None, []
    seen = set()
    try:
        f = open(path, encoding="utf-8")
    except FileNotFoundError:
        return collected, results, errors
    with f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            kind = parts[0]
            if kind == "collected" and len(parts) > 1:
                if parts[1] not in seen:
                    seen.add(parts[1])
                    collected.append(parts[1])
            elif kind == "start" and len(parts) > 1:
                started = parts[1]
            elif kind == "result" and len(parts) > 2:
                results[parts[1]] = (parts[2], parts[3] if len(parts) > 3 else "")
                if started == parts[1]:
                    started = None
            elif kind == "collect-error":
                errors.append((parts[1] if len(parts) > 1 else "?", parts[2] if len(parts) > 2 else ""))
            elif kind == "hung" and len(parts) > 1:
                results[parts[1]] = ("hung", parts[2] if len(parts) > 2 else "")
    for cid in collected:
        results.setdefault(cid, ("not run", "the pass stopped before it"))
    return collected, results, errors


def cmd_remaining(paths):
    last = paths[-1]
    # A test that started and never finished: the run hung on it or died in it.
    started = None
    with open(last, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if parts[0] == "start":
                started = parts[1]
            elif parts[0] in ("result", "hung") and started == parts[1]:
                started = None
    if started is not None:
        with open(last, "a", encoding="utf-8") as f:
            f.write(f"hung\t{started}\tstill running when the run was stopped (hang or crash)\n")
    collected, finished = [], set()
    for p in paths:
        c, r, _ = read(p)
        collected += [x for x in c if x not in collected]
        finished |= {k for k, (o, _) in r.items() if o != "not run"}
    for cid in collected:
        if cid not in finished:
            print(cid)


def cmd_ids(path, kinds):
    _, results, _ = read(path)
    for tid, (outcome, _) in results.items():
        if outcome in kinds:
            print(tid)


def load_allowlist(path):
    allow = []
    try:
        f = open(path, encoding="utf-8")
    except FileNotFoundError:
        return allow
    with f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            pattern, _, reason = line.partition("#")
            allow.append((pattern.strip(), reason.strip()))
    return allow


def allowed(tid, allow):
    for pattern, reason in allow:
        if tid == pattern or fnmatch.fnmatchcase(tid, pattern):
            return pattern, reason
    return None


def summary(label, results, errors):
    counts = Counter(o for o, _ in results.values())
    order = ["passed", "failed", "error", "skipped", "hung", "not run"]
    text = ", ".join(f"{counts[k]} {k}" for k in order if counts[k])
    extra = f", {len(errors)} collection error(s)" if errors else ""
    print(f"  {label:<17} {sum(counts.values())} tests: {text}{extra}")


def rerun_note(reruns, test, what, flaky):
    """How a differing test fared when run once more, for the report."""
    if test not in reruns:
        return ""
    outcome = reruns[test][0]
    return f" [{what}: passed -> {flaky}]" if outcome == "passed" else f" [{what}: {outcome} again]"


def cmd_compare(stock_path, inst_path, allow_path, rerun_inst=None, rerun_stock=None):
    _, stock, stock_err = read(stock_path)
    _, inst, inst_err = read(inst_path)
    allow = load_allowlist(allow_path)
    rr_inst = read(rerun_inst)[1] if rerun_inst else {}
    rr_stock = read(rerun_stock)[1] if rerun_stock else {}

    print("== rpyc upstream suite: stock rpyc vs rpyc_rs installed ==")
    summary("stock rpyc", stock, stock_err)
    summary("rpyc_rs installed", inst, inst_err)
    for label, errs in (("stock", stock_err), ("installed", inst_err)):
        for path, reason in errs:
            print(f"  collection error ({label}): {path}: {reason}")

    ids = sorted(set(stock) | set(inst))
    def o(results, t):
        return results.get(t, ("?",))[0]

    regressions = [t for t in ids if o(stock, t) == "passed" and o(inst, t) in BAD]
    reverse = [t for t in ids if o(inst, t) == "passed" and o(stock, t) in BAD]
    both_fail = [t for t in ids if o(stock, t) in BAD and o(inst, t) in BAD]
    unrun = [t for t in ids if o(stock, t) == "passed" and o(inst, t) not in BAD + OK]

    bad, flaky, listed = [], [], []
    print(f"\n-- passes stock, fails with rpyc_rs installed: {len(regressions)}")
    for t in regressions:
        outcome, reason = inst[t]
        note = rerun_note(rr_inst, t, "rerun", "flaky")
        hit = allowed(t, allow)
        if hit:
            listed.append(t)
            tag = "allowed"
        elif t in rr_inst and rr_inst[t][0] == "passed":
            flaky.append(t)
            tag = "FLAKY"
        else:
            bad.append(t)
            tag = "NEW"
        print(f"  {tag:<7} {t}: {outcome}: {reason}{note}")
        if hit:
            print(f"          allow-list: {hit[1] or '(no reason given)'}")

    print(f"\n-- passes with rpyc_rs installed, fails stock: {len(reverse)}")
    for t in reverse:
        outcome, reason = stock[t]
        note = rerun_note(rr_stock, t, "stock rerun", "flaky under stock")
        print(f"  {t}: stock {outcome}: {reason}{note}")

    if unrun:
        print(f"\n-- passes stock, not run with rpyc_rs installed (the pass ran out of time): {len(unrun)}")
        for t in unrun:
            print(f"  {t}: {o(inst, t)}")

    if both_fail:
        print(f"\n-- fails both ways (not counted): {len(both_fail)}")
        for t in both_fail:
            print(f"  {t}: stock {stock.get(t, ('?',))[0]}, installed {inst.get(t, ('?',))[0]}")

    regressed = set(regressions)
    stale = [p for p, _ in allow if not any(fnmatch.fnmatchcase(t, p) or t == p for t in regressed)]
    if stale:
        print("\n-- allow-list entries that did not fail this time (fixed, flaky or not run):")
        for p in stale:
            print(f"  {p}")

    print()
    if bad or unrun:
        print(f"ci/upstream: {len(bad)} regression(s) not in the allow-list"
              + (f", {len(unrun)} test(s) not run with rpyc_rs installed" if unrun else ""))
        return 1
    print(f"ci/upstream: no unlisted regressions ({len(listed)} allowed, {len(flaky)} flaky)")
    return 0


def main(argv):
    if not argv:
        print(__doc__)
        return 2
    cmd, args = argv[0], argv[1:]
    if cmd == "remaining":
        cmd_remaining(args)
        return 0
    if cmd == "ids":
        cmd_ids(args[0], set(args[1:]))
        return 0
    if cmd == "compare":
        opts = {"--rerun-installed": None, "--rerun-stock": None}
        pos = []
        it = iter(args)
        for a in it:
            if a in opts:
                opts[a] = next(it)
            else:
                pos.append(a)
        return cmd_compare(*pos, rerun_inst=opts["--rerun-installed"], rerun_stock=opts["--rerun-stock"])
    print(f"unknown command {cmd!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
