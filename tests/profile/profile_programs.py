"""Synthetic programs with known shares, written to a folder and profiled by the tests."""

from __future__ import annotations

from pathlib import Path

SHARES = '''
import time

def spin(cpu_seconds):
    end = time.thread_time() + cpu_seconds
    x = 0
    while time.thread_time() < end:
        x += 1
    return x

def sixty():
    spin(0.006)

def thirty():
    spin(0.003)

def ten():
    spin(0.001)

def step():
    sixty()
    thirty()
    ten()

def main(n):
    for _ in range(n):
        step()

if __name__ == "__main__":
    import sys
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
'''

SLEEPS = '''
import threading
import time

def burn(cpu_seconds):
    end = time.thread_time() + cpu_seconds
    while time.thread_time() < end:
        pass

def compute():
    burn(0.25)

def sleeper():
    time.sleep(0.35)

def wait_for_worker():
    done = threading.Event()
    threading.Thread(target=lambda: (burn(0.15), done.set()), name="worker").start()
    done.wait()

def main():
    for _ in range(2):
        compute()
        sleeper()
        wait_for_worker()

if __name__ == "__main__":
    main()
'''


def write(folder: Path, name: str, text: str) -> Path:
    path = Path(folder) / name
    path.write_text(text)
    return path
