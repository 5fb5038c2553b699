#!/usr/bin/env python3
"""bench/scale_model.py RUN_DIR [--link-gbit G] [--parts P]

The scale-out model of docs/PERFORMANCE.md ("Scale-out model"), fitted
from the runs that bench/scale_model.sh left in RUN_DIR; prints it as
Markdown (scale_model.sh keeps it in RUN_DIR/model.md).

Per component class (source, router-1..4, map, filter, reduce, sink) and
mode, the CPU of a run is modelled as

    cpu = procs * f + a * rows + b * batches

f: the fixed cost of one process (start-up: Lua, keys, sockets), from the
2,000-row runs; a: CPU per input row; b: CPU per batch the class handles
(each input batch passes every hop as one batch). a and b are fitted by
least squares on the runs with 1 worker per stage at two or more batch
sizes; every other run (2 and 4 workers, the namespace hosts over TCP) is
predicted, not fitted, and its error is shown. Encrypted against plain:
the extra CPU per row divided by the bytes per row that the class sends
and receives is the per-byte cost of AEAD + CurveZMQ.
"""
import glob
import json
import math
import os
import re
import sys

CLASSES = ["source", "router-1", "map", "router-2", "filter", "router-3",
           "reduce", "router-4", "sink"]
STAGES = ["map", "filter", "reduce"]
SINGLES = ["source", "router-1", "router-2", "router-3", "router-4", "sink"]
SUMMARY = re.compile(r"^\s+(\S+)\s+(source|router|worker|sink)\s+(\d+)\s+(\d+)"
                     r"\s+\S+\s+\S+\s+(\d+)\s+([\d.]+) s\s+([\d.]+) MB")


def kv(path):
    d = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                d[k] = v
    return d


def klass(name):
    if name in ("source", "sink") or name.startswith("router-"):
        return name
    return re.sub(r"-\d+$", "", name)


def size(s):
    m = re.match(r"^(\d+)([KM]?)$", s)
    return int(m.group(1)) * {"": 1, "K": 1024, "M": 1 << 20}[m.group(2)]


def parse_local(d, info):
    run = {"info": info, "cls": {}, "procs": {}}
    metrics = {}
    mpath = os.path.join(d, "metrics.jsonl")
    if os.path.exists(mpath):
        with open(mpath) as f:
            for line in f:
                try:
                    j = json.loads(line)
                except ValueError:
                    continue
                if j.get("final"):
                    metrics[j["name"]] = j
    with open(os.path.join(d, "summary")) as f:
        for line in f:
            m = SUMMARY.match(line)
            if not m:
                continue
            name = m.group(1)
            c = klass(name)
            if c not in CLASSES:
                continue
            j = metrics.get(name, {})
            e = run["cls"].setdefault(c, {"cpu": 0.0, "procs": 0, "rows_in": 0,
                                          "batches": 0, "bytes": 0})
            e["cpu"] += float(m.group(6))
            e["procs"] += 1
            e["rows_in"] += int(m.group(3))
            e["batches"] += j.get("batches_out" if c == "source" else "batches_in", 0)
            e["bytes"] += j.get("in_bytes", 0) + j.get("out_bytes", 0)
            run["procs"][name] = float(m.group(6))
    t = info.get("time", "").split()
    if len(t) == 3:
        run["wall"], run["cpu_all"] = float(t[0]), float(t[1]) + float(t[2])
    return run


def parse_netns(d, info):
    run = {"info": info, "cls": {}, "procs": {}}
    batches = {}
    for path in glob.glob(os.path.join(d, "*.time")):
        name = os.path.basename(path)[:-5]
        with open(path) as f:
            last = f.read().strip().splitlines()[-1].split()
        cpu = float(last[1]) + float(last[2])
        c = klass(name)
        e = run["cls"].setdefault(c, {"cpu": 0.0, "procs": 0, "rows_in": 0,
                                      "batches": 0, "bytes": 0})
        e["cpu"] += cpu
        e["procs"] += 1
        run["procs"][name] = cpu
    for k in range(1, 5):
        p = os.path.join(d, "router-%d.log" % k)
        if os.path.exists(p):
            m = re.findall(r"complete: (\d+) batches in, (\d+) sent", open(p).read())
            if m:
                batches["router-%d" % k] = int(m[-1][0])
                batches[["map", "filter", "reduce", "sink"][k - 1]] = int(m[-1][1])
    p = os.path.join(d, "source.log")
    if os.path.exists(p):
        m = re.findall(r"events in (\d+) batches", open(p).read())
        if m:
            batches["source"] = int(m[-1])
    for c, e in run["cls"].items():
        e["batches"] = batches.get(c, 0)
    run["wall"] = float(info.get("wall", "nan"))
    run["cpu_all"] = sum(e["cpu"] for e in run["cls"].values())
    return run


def lstsq2(xs, ys):
    """y = a*x0 + b*x1, least squares; b (or a) clamped at 0 if negative."""
    s00 = sum(x[0] * x[0] for x in xs)
    s01 = sum(x[0] * x[1] for x in xs)
    s11 = sum(x[1] * x[1] for x in xs)
    t0 = sum(x[0] * y for x, y in zip(xs, ys))
    t1 = sum(x[1] * y for x, y in zip(xs, ys))
    det = s00 * s11 - s01 * s01
    if abs(det) > 1e-9 * max(s00 * s11, 1e-30):
        a = (t0 * s11 - t1 * s01) / det
        b = (s00 * t1 - s01 * t0) / det
        if a >= 0 and b >= 0:
            return a, b, True
        if b < 0:
            return max(t0 / s00, 0.0), 0.0, False
        return 0.0, max(t1 / s11, 0.0), False
    return max(t0 / s00, 0.0), 0.0, False


def us(x):
    return "%.3f" % (x * 1e6)


def main():
    argv = sys.argv[1:]
    if not argv:
        sys.exit(__doc__)
    rd = argv[0]
    link_gbit, parts = 10.0, 4
    if "--link-gbit" in argv:
        link_gbit = float(argv[argv.index("--link-gbit") + 1])
    if "--parts" in argv:
        parts = int(argv[argv.index("--parts") + 1])
    top = kv(os.path.join(rd, "info"))
    nrows = int(top["rows"])
    row_bytes = int(top["bytes"]) / nrows
    runs = []
    for d in sorted(glob.glob(os.path.join(rd, "*-*"))):
        ip = os.path.join(d, "info")
        if not os.path.isdir(d) or not os.path.exists(ip):
            continue
        info = kv(ip)
        ok = info.get("rc") == "0" and info.get("same_as_awk") == "yes"
        r = (parse_local if info["where"] == "local" else parse_netns)(d, info)
        r["ok"], r["dir"] = ok, os.path.basename(d)
        r["rows"] = 2000 if info.get("tag", "").startswith("small") else nrows
        runs.append(r)
    out = []
    p = out.append
    p("Fitted by `bench/scale_model.py %s` from the runs of `bench/scale_model.sh`" % rd)
    p("on %s (%s rows, %.0f MB, %.1f bytes per row), commit %s, %s UTC, %s cores (%s)."
      % (top["data"], nrows, int(top["bytes"]) / 1e6, row_bytes, top["commit"],
         top["date"], top["nproc"], top["cpu"]))
    p("")
    bad = [r["dir"] for r in runs if not r["ok"]]
    if bad:
        p("Left out (failed, timed out or not awk's answer): " + ", ".join(bad))
        p("")
    modes = []
    for r in runs:
        if r["info"]["mode"] not in modes:
            modes.append(r["info"]["mode"])
    model = {}
    for mode in modes:
        small = [r for r in runs if r["ok"] and r["info"]["mode"] == mode
                 and r["info"]["tag"].startswith("small")]
        fit = [r for r in runs if r["ok"] and r["info"]["mode"] == mode
               and r["info"]["where"] == "local" and r["info"]["workers"] == "1"
               and not r["info"]["tag"].startswith("small")]
        if not fit:
            continue
        m = {}
        for c in CLASSES:
            f = 0.0
            if small:
                f = sum(r["cls"].get(c, {}).get("cpu", 0) / max(r["cls"].get(c, {}).get("procs", 1), 1)
                        for r in small) / len(small)
            xs, ys = [], []
            for r in fit:
                e = r["cls"].get(c)
                if not e:
                    continue
                xs.append((r["rows"], e["batches"]))
                ys.append(e["cpu"] - e["procs"] * f)
            if not xs:
                continue
            # relative errors: each run weighs the same, whatever its batch size
            wx = [(x[0] / max(y, 1e-3), x[1] / max(y, 1e-3)) for x, y in zip(xs, ys)]
            a, b, full = lstsq2(wx, [1.0] * len(ys))
            e0 = fit[0]["cls"][c]
            m[c] = {"f": f, "a": a, "b": b, "full": full,
                    "bytes_row": e0["bytes"] / fit[0]["rows"],
                    "bpr": {r["info"]["batch"]: r["cls"][c]["batches"] / r["rows"]
                            for r in fit if c in r["cls"]}}
        model[mode] = m
    sizes = top["batches"].split()

    # ---- the fitted costs ----
    p("**Fitted costs** (f: fixed CPU per process; a: per input row; b: per batch "
      "that the class handles; u: a + b x batches per row, what one input row costs "
      "at that batch size; bytes: what the class receives and sends per input row):")
    p("")
    hdr = "| mode | class | f (s) | a (µs/row) | b (µs/batch) | " + \
        " | ".join("u at %s (µs/row)" % s for s in sizes) + " | bytes/row |"
    p(hdr)
    p("|" + "---|" * (hdr.count("|") - 1))
    for mode, m in model.items():
        tot = {s: 0.0 for s in sizes}
        for c in CLASSES:
            if c not in m:
                continue
            x = m[c]
            cols = []
            for s in sizes:
                u = x["a"] + x["b"] * x["bpr"].get(s, float("nan"))
                tot[s] += u
                cols.append(us(u))
            p("| %s | %s | %.3f | %s | %.1f%s | %s | %.0f |" % (
                mode, c, x["f"], us(x["a"]), x["b"] * 1e6, "" if x["full"] else " (clamped)",
                " | ".join(cols), x["bytes_row"]))
        p("| %s | **all** | | | | %s | |" % (mode, " | ".join("**%s**" % us(tot[s]) for s in sizes)))
    p("")
    if "plain" in model:
        for mode in model:
            if mode == "plain":
                continue
            p("**%s against plain, per class** (extra a per byte sent and received: "
              "the per-byte cost of AEAD + CurveZMQ; extra b per batch):" % mode)
            p("")
            p("| class | extra a (µs/row) | bytes/row | ns per byte | extra b (µs/batch) |")
            p("|---|---:|---:|---:|---:|")
            for c in CLASSES:
                if c in model[mode] and c in model["plain"]:
                    x, y = model[mode][c], model["plain"][c]
                    da = x["a"] - y["a"]
                    nsb = "%.2f" % (da / x["bytes_row"] * 1e9) if x["bytes_row"] >= 10 else "-"
                    p("| %s | %s | %.0f | %s | %.1f |" % (
                        c, us(da), x["bytes_row"], nsb, (x["b"] - y["b"]) * 1e6))
            p("")

    # ---- the check: every run, predicted from the fit ----
    def predict(r, m):
        tot, per = 0.0, {}
        for c, e in r["cls"].items():
            if c not in m:
                continue
            x = m[c]
            v = e["procs"] * x["f"] + x["a"] * r["rows"] + x["b"] * e["batches"]
            per[c] = v
            tot += v
        return tot, per

    p("**Check**: each run's CPU (the sum over its processes) against the model "
      "fitted on the local 1-worker runs (those are marked fit); the namespace "
      "runs over TCP are predicted with the local (ipc) costs of their mode, so "
      "their error is what TCP between hosts adds. Wall: measured, and the "
      "lower bound the model gives on this machine's cores "
      "(max(CPU / cores, the busiest process)) on a quiet machine; the load "
      "average (1 min) before and after says how far from quiet it was.")
    p("")
    p("| run | mode | workers (maps) | batch | CPU measured | CPU model | error | "
      "time(1) user+sys | wall | wall bound, quiet | load before / after |")
    p("|---|---|---|---|---:|---:|---:|---:|---:|---:|---|")
    ncores = int(top["nproc"])
    errs = {}
    groups = {}
    for r in runs:
        i = r["info"]
        mode = i["mode"]
        if not r["ok"] or mode not in model or i["tag"].startswith("small"):
            continue
        pred, per = predict(r, model[mode])
        meas = sum(e["cpu"] for e in r["cls"].values())
        err = (meas - pred) / pred * 100 if pred else float("nan")
        isfit = i["where"] == "local" and i["workers"] == "1"
        key = "fit" if isfit else ("netns" if i["where"] == "netns" else "predicted")
        errs.setdefault((key, mode), []).append(err)
        gname = "%s %s, %s, %s, batch %s" % (
            i["where"], mode, "%s map worker(s), 1 filter, 1 reduce" % i["maps"] if i["where"] == "netns"
            else "%s worker(s)/stage" % i["workers"], "fit" if isfit else "predicted", i["batch"])
        # each process's share of its class, the source's threads
        busiest = 0.0
        for c, v in per.items():
            n = r["cls"][c]["procs"]
            threads = min(parts, ncores) if c == "source" else 1
            busiest = max(busiest, v / n / threads)
        bound = max(pred / ncores, busiest)
        groups.setdefault((i["where"] != "local", gname), []).append(
            (meas, pred, err, r.get("wall", float("nan")), bound,
             (i["load_before"].split()[0], i["load_after"].split()[0])))
        p("| %s%s | %s | %s (%s) | %s | %.2f s | %.2f s | %+.0f %% | %s | %.2f s | %.2f s | %s / %s |" % (
            i["where"], " (fit)" if isfit else "", mode, i["workers"], i["maps"], i["batch"],
            meas, pred, err, "%.2f s" % r["cpu_all"] if i["where"] == "local" else "-",
            r.get("wall", float("nan")), bound,
            i["load_before"].split()[0], i["load_after"].split()[0]))
    p("")
    p("The same, by configuration (medians of the runs; error: of each run against the model, "
      "the median and the largest):")
    p("")
    p("| configuration | runs | CPU measured | CPU model | error, median (largest) | wall | "
      "wall bound, quiet | load |")
    p("|---|---:|---:|---:|---:|---:|---:|---|")
    for g in sorted(groups):
        v = groups[g]
        med = lambda xs: sorted(xs)[len(xs) // 2]
        e = [x[2] for x in v]
        loads = [float(l) for x in v for l in x[5]]
        p("| %s | %d | %.2f s | %.2f s | %+.0f %% (%.0f %%) | %.2f s | %.2f s | %.0f-%.0f |" % (
            g[1], len(v), med([x[0] for x in v]), v[0][1], med(e), max(abs(x) for x in e),
            med([x[3] for x in v]), v[0][4], min(loads), max(loads)))
    p("")
    for (key, mode), v in sorted(errs.items()):
        p("- %s, %s: mean error %+.1f %%, largest %.1f %% (%d runs)" % (
            key, mode, sum(v) / len(v), max(abs(x) for x in v), len(v)))
    p("")

    p("Per class, the runs not fitted: measured / model CPU (s), all workers of a stage together:")
    p("")
    p("| run | " + " | ".join(CLASSES) + " |")
    p("|---|" + "---|" * len(CLASSES))
    for r in runs:
        i = r["info"]
        if not r["ok"] or i["mode"] not in model or i["tag"].startswith("small") or \
                (i["where"] == "local" and i["workers"] == "1"):
            continue
        _, per = predict(r, model[i["mode"]])
        cols = ["%.2f / %.2f" % (r["cls"][c]["cpu"], per[c]) if c in r["cls"] and c in per else "-"
                for c in CLASSES]
        p("| %s %s, %s workers (%s maps), %s | %s |" % (i["where"], i["mode"], i["workers"], i["maps"],
                                                       i["batch"], " | ".join(cols)))
    p("")

    # per hop over TCP: namespace runs against the model, per class
    nsr = [r for r in runs if r["ok"] and r["info"]["where"] == "netns" and r["info"]["mode"] in model]
    if nsr:
        p("**Per hop over TCP between namespace hosts** (veth + bridge) against local ipc: "
          "each class's measured CPU minus the model's, per batch it handles "
          "(a batch handled = one message received and one sent):")
        p("")
        p("| run | " + " | ".join(CLASSES) + " |")
        p("|---|" + "---:|" * len(CLASSES))
        for r in nsr:
            _, per = predict(r, model[r["info"]["mode"]])
            cols = []
            for c in CLASSES:
                e = r["cls"].get(c)
                if not e or c not in per or not e["batches"]:
                    cols.append("-")
                else:
                    cols.append("%+.0f µs" % ((e["cpu"] - per[c]) / e["batches"] * 1e6))
            p("| %s, %s maps | %s |" % (r["info"]["mode"], r["info"]["maps"], " | ".join(cols)))
        p("")
        for mode in model:
            rs = [r for r in nsr if r["info"]["mode"] == mode]
            if not rs:
                continue
            ex = []
            for r in rs:
                tot, per = predict(r, model[mode])
                meas = sum(e["cpu"] for e in r["cls"].values())
                ex.append((meas - tot) / r["cls"]["source"]["batches"] / 8 * 1e6)
            p("- %s: the whole pipeline over TCP between hosts minus the model (ipc), per batch "
              "and per hop (8 hops: a message sent and received): %s µs (mean %+.1f)" % (
                  mode, ", ".join("%+.1f" % x for x in ex), sum(ex) / len(ex)))
        p("")

    # ---- predictions for N hosts x C cores ----
    link = link_gbit * 1e9 / 8
    p("**Prediction, N hosts x C cores** (28M rows; every process at most one core, "
      "the source at most min(%d parts, C) cores (one thread per part), "
      "each router and the sink one process; routers placed round-robin over the hosts; "
      "links %.0f Gbit/s per direction; fixed costs left out):" % (parts, link_gbit))
    p("")
    p("throughput = min(N*C / sum(u), min(parts, C) / u(source), 1 / u(each router, sink), "
      "link / bytes per row through the busiest host); each stage then needs "
      "ceil(throughput x u(stage)) workers.")
    p("")
    p("| mode | batch | N x C | rows/s | MB/s | 28M rows | limit | next limit | workers map / filter / reduce |")
    p("|---|---|---|---:|---:|---:|---|---|---|")
    for mode, m in model.items():
        for s in sizes:
            u = {c: m[c]["a"] + m[c]["b"] * m[c]["bpr"].get(s, float("nan")) for c in m}
            if any(math.isnan(v) for v in u.values()):
                continue
            for n, cores in ((1, 2), (2, 4), (4, 8), (8, 16)):
                k = n * cores
                lims = {"all cores": k / sum(u.values())}
                for c in SINGLES:
                    if c in u and u[c] > 0:
                        lims[c] = (min(parts, cores) if c == "source" else 1) / u[c]
                if n > 1:
                    hosts = [[0.0, 0.0] for _ in range(n)]
                    for j in range(4):
                        c = "router-%d" % (j + 1)
                        if c in m:
                            hosts[j % n][0] += m[c]["bytes_row"] / 2 * (n - 1) / n
                            hosts[j % n][1] += m[c]["bytes_row"] / 2 * (n - 1) / n
                    lims["link"] = link / max(max(h) for h in hosts)
                order = sorted(lims, key=lims.get)
                lim = order[0]
                x = lims[lim]
                nxt = "%s (%.2fM)" % (order[1], lims[order[1]] / 1e6) if len(order) > 1 else "-"
                w = [str(max(1, math.ceil(x * u[c] - 1e-9))) for c in STAGES if c in u]
                p("| %s | %s | %dx%d | %.2fM | %.0f | %.1f s | %s | %s | %s |" % (
                    mode, s, n, cores, x / 1e6, x * row_bytes / 1e6, 28e6 / x, lim, nxt, " / ".join(w)))
    p("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
