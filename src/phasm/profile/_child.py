"""Launcher run as ``python -m phasm.profile._child SESSION.json RATE -- script.py ARGS``.

Starts the in-process sampler, runs the script (or ``-m module``) as
``__main__`` with the given ``sys.argv``, and writes the session JSON even
when the script exits with an error. Its exit status is the script's.
"""

from __future__ import annotations

import os
import runpy
import sys


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: python -m phasm.profile._child SESSION.json RATE -- script.py [ARGS] | -m module [ARGS]",
              file=sys.stderr)
        return 2
    out, rate, target = argv[0], float(argv[1]), argv[3:]
    from phasm.profile.sampler_inprocess import InProcessSampler

    sampler = InProcessSampler(rate_hz=rate, cut_after=runpy._run_code.__code__)  # type: ignore[attr-defined]
    sampler.session.command = ["python", *target]
    status = 0
    if target[0] == "-m":
        if len(target) < 2:
            print("phasm profile: -m needs a module name", file=sys.stderr)
            return 2
        sys.argv = [target[1], *target[2:]]
        sys.path.insert(0, os.getcwd())
        run = lambda: runpy.run_module(target[1], run_name="__main__", alter_sys=True)  # noqa: E731
    else:
        script = target[0]
        if not os.path.exists(script):
            print(f"phasm profile: script not found: {script}", file=sys.stderr)
            return 2
        sys.argv = list(target)
        sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
        run = lambda: runpy.run_path(script, run_name="__main__")  # noqa: E731
    sampler.start()
    try:
        run()
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        status = 1
    finally:
        session = sampler.stop()
        session.meta["exit_status"] = status
        session.save(out)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
