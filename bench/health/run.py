#!/usr/bin/env python3
"""What health probes cost (issue 12, item 4): N registered `wsreg echo` servers, one
`wsreg serve` probing them every INTERVAL while one SSE client is subscribed. Measures
the CPU time of serve (the prober) and of all the echo servers together over a window,
after every server has been found `ok`, and how long a SIGSTOP takes to show as
`unresponsive` and a SIGCONT as `ok` again. In the same run, the same set-up with
probes off (`--health-interval 0`) is the baseline.

    bench/health/run.py [--servers 100] [--interval 5s] [--window 30] [--section]

`--section` writes the table into docs/benchmarks.md (bench/section.sh health).
Uses target/release/wsreg (built by `cargo build --release` first). Loopback only.
"""
import argparse, json, os, shutil, signal, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WSREG = os.path.join(ROOT, "target", "release", "wsreg")


def thread_times(pid):
    """Each thread's CPU time in ns (schedstat: to the nanosecond, where the tick counts
    of /proc/<pid>/stat round a hundred small users down to zero)."""
    times = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                times[(pid, tid)] = int(f.read().split()[0])
        except FileNotFoundError:
            pass  # a thread that ended
    return times


def sample(pids):
    times = {}
    for pid in pids:
        times.update(thread_times(pid))
    return times


def used_secs(before, after):
    """CPU seconds used between two samples; a thread that ended in between counts what
    it had (tokio's idle blocking threads end after 10 s)."""
    return sum(after.get(t, ns) - ns for t, ns in before.items()) / 1e9 + \
        sum(ns for t, ns in after.items() if t not in before) / 1e9


def listening_line(proc):
    for line in proc.stdout:
        if " listening on " in line:
            return line.split(" listening on ")[1].split()
    raise RuntimeError("no listening line")


class Events:
    """A raw SSE subscription on its own thread, keeping the last `servers` document."""

    def __init__(self, url):
        self.proc = subprocess.Popen(["curl", "-sN", url + "api/registry/events"],
                                     stdout=subprocess.PIPE, text=True)
        self.last, self.cond = None, threading.Condition()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        event = None
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "servers":
                with self.cond:
                    self.last = json.loads(line[5:])
                    self.cond.notify_all()

    def wait(self, pred, limit):
        deadline = time.monotonic() + limit
        with self.cond:
            while not (self.last and pred(self.last)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("condition not met")
                self.cond.wait(left)
        return time.monotonic()

    def close(self):
        self.proc.kill(); self.proc.wait()


def states(doc):
    return {s["id"]: s["health"]["state"] for s in doc["servers"]}


def run(n, interval, window):
    tmp = tempfile.mkdtemp(prefix="wsreg-health-bench-")
    reg = os.path.join(tmp, "servers.json")
    env = dict(os.environ, WSREG_LOG="warn")
    procs = []
    try:
        echoes = []
        for _ in range(n):
            p = subprocess.Popen([WSREG, "--registry", reg, "echo"], stdout=subprocess.PIPE, text=True, env=env)
            procs.append(p)
            echoes.append((p, listening_line(p)[2]))
        serve = subprocess.Popen([WSREG, "--registry", reg, "serve", "--port", "0", "--health-interval", interval],
                                 stdout=subprocess.PIPE, text=True, env=env)
        procs.append(serve)
        url = listening_line(serve)[0]
        events = Events(url)
        all_ok = lambda d: len(d["servers"]) == n and all(v == "ok" for v in states(d).values())
        probing = interval != "0"
        events.wait(all_ok if probing else (lambda d: len(d["servers"]) == n), 30)
        pids = [p.pid for p, _ in echoes]
        s0, e0 = sample([serve.pid]), sample(pids)
        time.sleep(window)  # the measuring window
        s1, e1 = sample([serve.pid]), sample(pids)
        result = {"serve": used_secs(s0, s1), "echoes": used_secs(e0, e1)}
        if probing:
            victim, vid = echoes[n // 2]
            t = time.monotonic(); victim.send_signal(signal.SIGSTOP)
            result["stop"] = events.wait(lambda d: states(d).get(vid) == "unresponsive", 15) - t
            t = time.monotonic(); victim.send_signal(signal.SIGCONT)
            result["cont"] = events.wait(lambda d: states(d).get(vid) == "ok", 15) - t
        events.close()
        return result
    finally:
        for p in procs:
            p.send_signal(signal.SIGCONT); p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill(); p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def plugin_cost(n, window):
    """The Vite plugin's prober under the same load, measured by its own script (the
    Vite process's CPU, probes off and every 5 s with one subscriber, then with nobody
    subscribed): three percentages as text."""
    out = subprocess.run(
        ["node", os.path.join(ROOT, "packages", "vite-plugin-wsreg", "bench", "health-cost.js"), str(n), str(int(window))],
        env=dict(os.environ, WSREG_BIN=WSREG), capture_output=True, text=True, timeout=600)
    found = [line.split("= ")[1].split(" of one core")[0] for line in out.stdout.splitlines() if "of one core" in line]
    if out.returncode != 0 or len(found) != 3:
        return ("not measured", (out.stderr or out.stdout).strip().splitlines()[-1:] or ["?"], "–")
    return found


def plugin_added(plugin, probes, window):
    """The plugin's probes-on minus probes-off, as text: points of one core, and µs per probe."""
    try:
        added = float(plugin[1].rstrip(" %")) - float(plugin[0].rstrip(" %"))
    except (AttributeError, ValueError):
        return "not measured"
    return f"{added:.2f} % ({1e4 * added * window / probes:.0f} µs)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--servers", type=int, default=100)
    ap.add_argument("--interval", default="5s")
    ap.add_argument("--window", type=float, default=30)
    ap.add_argument("--section", action="store_true")
    a = ap.parse_args()
    if not os.access(WSREG, os.X_OK):
        sys.exit(f"{WSREG} is missing: cargo build --release first")
    secs = float(a.interval.rstrip("s")) if a.interval.endswith("s") and not a.interval.endswith("ms") else float(a.interval.rstrip("ms")) / 1000
    base = run(a.servers, "0", a.window)
    probed = run(a.servers, a.interval, a.window)
    plugin = plugin_cost(a.servers, a.window)
    probes = a.servers * a.window / secs
    pct = lambda cpu: 100 * cpu / a.window
    rows = [
        ("| measure | probes off (baseline) | probes every " + a.interval + " | target |"),
        "|---|---|---|---|",
        f"| `wsreg serve` CPU, % of one core | {pct(base['serve']):.3f} % | {pct(probed['serve']):.3f} % | ≤ 1 % |",
        f"| serve CPU per probe | – | {1e6 * (probed['serve'] - base['serve']) / probes:.0f} µs | |",
        f"| the {a.servers} echo servers' CPU, % of one core | {pct(base['echoes']):.3f} % | {pct(probed['echoes']):.3f} % | |",
        f"| echo CPU per probe answered | – | {1e6 * (probed['echoes'] - base['echoes']) / probes:.0f} µs | |",
        f"| Vite plugin: the Vite process's CPU, % of one core (its own figures: `bench/health-cost.js`) | {plugin[0]} | {plugin[1]} | ≤ 1 % more |",
        f"| Vite plugin: what the probes add (CPU per probe) | – | {plugin_added(plugin, probes, a.window)} | ≤ 1 % |",
        f"| Vite plugin with nobody subscribed (no probe, no liveness timer), the Vite process's CPU | {plugin[2]} | | Vite's own |",
        f"| SIGSTOP → `unresponsive` event | – | {probed['stop']:.2f} s | ≤ 7 s |",
        f"| SIGCONT → `ok` event | – | {probed['cont']:.2f} s | ≤ 7 s |",
    ]
    text = "\n".join([
        f"## Health probes (issue 12): {a.servers} servers, one subscriber",
        "",
        f"Measured by `bench/health/run.py --servers {a.servers} --interval {a.interval} --window {a.window:g}`"
        f" on {time.strftime('%Y-%m-%d')}: CPU time over a {a.window:g} s window once every server"
        " was `ok`, release build; the baseline is the same set-up with probes off, in the same run."
        " This machine has 2 cores, shared while measuring.",
        "",
        *rows,
    ])
    print(text)
    if a.section:
        subprocess.run([os.path.join(ROOT, "bench", "section.sh"), "health"], input=text, text=True, check=True)


if __name__ == "__main__":
    main()
