#!/usr/bin/env python3
"""Fails the test suite if a process it started outlives it.

tests/run.sh exports GORP_TEST_RUN=<a fresh id> before building and testing;
every process the suite starts (test binaries, gorpd, gateways, Synapse,
chromedriver and Chromium, agents, nats-server) inherits it, and the test
helpers that clear a child's environment pass it on explicitly. At the end,
run.sh calls this script: any live process whose environment carries the
id, other than this script and its ancestors, is a leak. Leaks get a few
seconds to finish exiting, are then listed (pid, parent, process group,
command line), killed, and the script exits 1.

    check_leaked_processes.py            check for the id in $GORP_TEST_RUN
    check_leaked_processes.py --self-test  show that a leak is caught and a clean run passes
"""

import os
import signal
import subprocess
import sys
import time
import uuid

MARKER = "GORP_TEST_RUN"


def ancestors():
    """This process and every process above it."""
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as stat:
                # The command may hold spaces and parentheses; the fields after its last ')' do not.
                pid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            break
    return pids


def marked(run_id):
    """Live processes (pid, ppid, pgid, command line) that carry GORP_TEST_RUN=run_id, except our own line."""
    needle = f"{MARKER}={run_id}".encode()
    mine = ancestors()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in mine:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as environ:
                if needle not in environ.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            if fields[0] == "Z":
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue  # gone meanwhile, or a kernel thread
        found.append((int(entry), int(fields[1]), int(fields[2]), command))
    return found


def check(run_id, grace_secs):
    """Returns the leaked processes after giving them `grace_secs` to exit; kills what is left."""
    deadline = time.monotonic() + grace_secs
    leaked = marked(run_id)
    while leaked and time.monotonic() < deadline:
        time.sleep(0.2)
        leaked = marked(run_id)
    for pid, _, _, _ in leaked:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return leaked


def self_test():
    run_id = f"self-test-{uuid.uuid4()}"
    env = dict(os.environ, **{MARKER: run_id})
    orphan = subprocess.Popen(["sleep", "120"], env=env, start_new_session=True)
    # Popen returns once the child is forked; it carries the marker only after its exec
    # (on a busy machine that can take a while), so wait until it shows before checking.
    deadline = time.monotonic() + 10
    while not marked(run_id) and time.monotonic() < deadline:
        time.sleep(0.02)
    leaked = check(run_id, grace_secs=0)
    orphan.wait()
    assert [pid for pid, *_ in leaked] == [orphan.pid], f"the leak was not caught: {leaked}"
    assert check(run_id, grace_secs=0) == [], "a clean run must pass"
    print("check_leaked_processes: self-test passed (a leaked sleep was caught and killed)")


def main():
    if sys.argv[1:] == ["--self-test"]:
        self_test()
        return 0
    run_id = os.environ.get(MARKER)
    if not run_id:
        print(f"check_leaked_processes: {MARKER} is not set", file=sys.stderr)
        return 2
    leaked = check(run_id, grace_secs=5)
    if not leaked:
        print("check_leaked_processes: no process started by the suite outlived it")
        return 0
    print(f"check_leaked_processes: {len(leaked)} process(es) started by the suite outlived it (now killed):",
          file=sys.stderr)
    for pid, ppid, pgid, command in leaked:
        print(f"  pid {pid} (parent {ppid}, group {pgid}): {command[:200]}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
