"""Call targets for tests/test_jobserver.py: imported by the server's worker through the client's sys.path."""
import json
import os
import sys
import time


def report(*, path):
    with open(path, "w") as f:
        json.dump({"pid": os.getpid(), "cwd": os.getcwd(), "env": os.environ.get("JOBSERVER_TEST_VALUE")}, f)
    print("hello from the worker")


def fail(*, message):
    raise ValueError(message)


def exit_with(*, code):
    sys.exit(code)


def die_by_signal(*, signum):
    os.kill(os.getpid(), signum)


def sleep_forever(*, pid_path):
    with open(pid_path, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(600)
