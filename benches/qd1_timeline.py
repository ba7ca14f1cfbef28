#!/usr/bin/env python3
"""Per-request timeline of a QD 1 cell of target_vs_vblade.sh (TRACE_DIR=dir).

Input: `perf script --ns -F comm,pid,tid,cpu,time,event,trace` of a recording of
net:net_dev_start_xmit, sched:sched_wakeup, sched:sched_switch and raw_syscalls on
both CPUs. For every request (a transmit on cli0) up to the server's reply (a
transmit on tgt0 by the server thread): the server's wake-up, its switch-in, each
of its syscalls (by number). Prints the median of each step over the requests of
the most common shape. Tracepoints inflate every step; compare servers, not
absolute figures.
"""
import re
import statistics as st
import sys
from collections import Counter

path = sys.argv[1]
rx = re.compile(r'^\s*(.+?)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)$')
ev = []
for line in open(path):
    m = rx.match(line)
    if m:
        comm, pid, tid, cpu, t, name, rest = m.groups()
        ev.append((float(t)*1e6, int(tid), name, rest))
srv = next(e[1] for e in ev if e[2].endswith('start_xmit') and 'dev=tgt0' in e[3] and '0x88a2' in e[3])
reqs = [k for k, e in enumerate(ev) if e[2].endswith('start_xmit') and 'dev=cli0' in e[3] and '0x88a2' in e[3]]
rows = []
for a, b in zip(reqs, reqs[1:]):
    marks = [("request sent", ev[a][0])]
    for t, tid, name, rest in ev[a + 1:b]:
        if name == "sched:sched_wakeup" and f"pid={srv} " in rest:
            marks.append(("woken", t))
        elif name == "sched:sched_switch" and f"next_pid={srv} " in rest:
            marks.append(("on cpu", t))
        elif tid == srv and name.startswith("raw_syscalls"):
            nr = rest.split()[1]
            marks.append((("exit " if "exit" in name else "enter ") + nr, t))
        elif tid == srv and name.endswith("start_xmit") and "dev=tgt0" in rest:
            marks.append(("reply sent", t))
            rows.append(tuple(marks))
            break
if not rows:
    sys.exit(f"{path}: no request with its reply in the trace")
shapes = Counter(tuple(m[0] for m in r) for r in rows)
shape, cnt = shapes.most_common(1)[0]
print(f"{path}: {len(rows)} requests, {cnt} of this shape (syscalls by number)")
sel = [r for r in rows if tuple(m[0] for m in r) == shape]
for i in range(1, len(shape)):
    d = [r[i][1] - r[i - 1][1] for r in sel]
    print(f"  {shape[i - 1]:>12} -> {shape[i]:12} median {st.median(d):6.2f} us")
awake = [r for r in rows if "woken" not in (m[0] for m in r)]
if awake:
    print(f"  served without a wake-up (the server was spinning): {len(awake)}, "
          f"request sent -> reply sent median {st.median([r[-1][1] - r[0][1] for r in awake]):.2f} us")
print(f"  request sent -> reply sent, all requests: median {st.median([r[-1][1] - r[0][1] for r in rows]):.2f} us")
