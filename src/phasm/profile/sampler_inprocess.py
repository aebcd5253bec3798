"""In-process stack sampler: interval timers (or a thread) reading Python stacks and CPU clocks.

Two methods, one output (a :class:`~phasm.profile.session.Session`):

``signal`` (default on POSIX, from the main thread)
    A one-shot ``ITIMER_REAL`` (SIGALRM) timer, re-armed with a jittered
    interval (mean ``1/rate`` s: a fixed period would alias with a periodic
    program). Each sample takes two alarms: the first, half a millisecond
    early, reads every thread's CPU clock; the second reads the stacks (the
    main thread's is the interrupted frame) and gives each thread the wall time
    since the previous sample, split into on-CPU and off-CPU (waiting: I/O, locks, sleep, or a
    busy machine) by the CPU the thread used in between. The kernel fires the
    timer, so samples are on time, and the handler needs no GIL hand-off,
    unlike a sampling thread. The program must not use SIGALRM itself
    (``signal.alarm``); blocking calls see EINTR and Python retries them.
    On-CPU time per sample is capped by the CPU the thread used since the
    previous sample, so a handler delayed by a busy machine does not count
    descheduled time as running. Limitation: Python runs signal handlers in
    the main thread only, so while the main thread blocks (``join``, a queue)
    and a worker holds the GIL, samples wait; the main thread's time is still
    right (it is credited to where it waited), but a short-lived worker's CPU
    is undercounted. For heavily threaded programs prefer py-spy. Without
    per-thread CPU clocks (``time.pthread_getcpuclockid``, missing on macOS)
    every sample counts as on-CPU.

``thread``
    A daemon thread wakes every tick, reads ``sys._current_frames()`` and splits
    each tick into on/off-CPU from the CPU each thread used just before the
    sample. Works anywhere, but it needs the GIL to take a sample, so on a
    loaded machine its samples drift towards places where the program lets
    the GIL go.

Example
-------
>>> from phasm.profile.sampler_inprocess import InProcessSampler
>>> with InProcessSampler(rate_hz=200) as sampler:
...     _ = sum(i * i for i in range(300_000))
>>> sampler.session.total("wall") > 0
True
"""

from __future__ import annotations

import random
import signal
import sys
import threading
import time
from types import CodeType, FrameType
from typing import Any

from phasm.profile.session import Frame, Session, is_library_file

_HAS_THREAD_CLOCKS = hasattr(time, "pthread_getcpuclockid")
METHODS = ("auto", "signal", "thread")


class InProcessSampler:
    """Sample all Python threads of this process (see the module doc for the two methods).

    Parameters
    ----------
    rate_hz: samples per second (1..10000); each sample is two alarms (signal method).
    method: 'signal', 'thread' or 'auto' (signal when possible).
    cut_after: a code object; stacks that pass through it keep only the frames
        above it (hides the launcher that runs the profiled script).
    session: add to this session instead of a new one.
    """

    def __init__(self, rate_hz: float = 100.0, *, method: str = "auto", cut_after: CodeType | None = None,
                 session: Session | None = None) -> None:
        if not 1 <= float(rate_hz) <= 10000:
            raise ValueError(f"rate_hz must be within 1..10000 samples per second, got {rate_hz}")
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.rate_hz = float(rate_hz)
        self.method = method
        self.cut_after = cut_after
        self.session = session if session is not None else Session()
        self._codes: dict[CodeType, int] = {}
        self._cpu: dict[int, float] = {}
        self._wall: dict[tuple[str, tuple[int, ...]], float] = {}
        self._on: dict[tuple[str, tuple[int, ...]], float] = {}
        self._names: dict[int, str] = {}
        self._running = False
        self._active = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._old_handlers: dict[int, Any] = {}
        self._t0 = 0.0
        self._pre: dict[int, float] | None = None
        self._t_pre = 0.0
        self._t_last = 0.0
        self._lead = 0.0005
        self._rng = random.Random(0x9A5)

    # -- control --------------------------------------------------------------

    def _resolve_method(self) -> str:
        if self.method != "auto":
            return self.method
        usable = (hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
                  and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None))
        return "signal" if usable else "thread"

    def start(self) -> "InProcessSampler":
        """Start sampling (returns self)."""
        if self._running:
            raise RuntimeError("sampler already started")
        self._active = self._resolve_method()
        if self._active == "signal" and threading.current_thread() is not threading.main_thread():
            raise RuntimeError("the signal sampler must be started from the main thread; use method='thread'")
        self.session.sampler = f"inprocess-{self._active}"
        self.session.rate_hz = self.rate_hz
        self.session.meta["thread_cpu_clocks"] = _HAS_THREAD_CLOCKS
        self._running = True
        self._t0 = time.perf_counter()
        self._refresh_names()
        for ident in sys._current_frames():
            self._cpu[ident] = self._thread_cpu(ident) or 0.0
        iv = 1.0 / self.rate_hz
        if self._active == "signal":
            self._old_handlers = {signal.SIGALRM: signal.signal(signal.SIGALRM, self._on_alarm)}
            self._rng = random.Random(0x9A5)
            self._lead = min(0.0005, iv / 4)
            self._pre = None
            self._t_last = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, max(self._next_interval() - self._lead, 1e-5))
        else:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="phasm-sampler", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> Session:
        """Stop sampling; returns the session (on-CPU and off-CPU seconds per stack)."""
        if not self._running:
            return self.session
        if self._active == "signal":
            self._running = False
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
            for sig, old in self._old_handlers.items():
                if signal.getsignal(sig) != self._on_alarm:
                    self.session.meta["warning"] = ("the program replaced the SIGALRM handler while it was "
                                                    "profiled: samples after that are missing; use py-spy")
                signal.signal(sig, old if old is not None else signal.SIG_DFL)
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        self._running = False
        self.session.duration_s += time.perf_counter() - self._t0
        for key in set(self._wall) | set(self._on):
            wall, on = self._wall.get(key, 0.0), self._on.get(key, 0.0)
            self.session.add(key[0], key[1], on, max(wall - on, 0.0))
        self._wall.clear()
        self._on.clear()
        return self.session

    def __enter__(self) -> "InProcessSampler":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- helpers ----------------------------------------------------------------

    @staticmethod
    def _thread_cpu(ident: int) -> float | None:
        """CPU seconds thread ``ident`` has used (its clock starts at 0 when the thread starts)."""
        if not _HAS_THREAD_CLOCKS:
            return None
        try:  # not cached: a dead thread's id may be reused by a new thread
            return time.clock_gettime(time.pthread_getcpuclockid(ident))
        except (OSError, OverflowError):
            return None

    def _refresh_names(self) -> None:
        self._names = {t.ident: t.name for t in threading.enumerate() if t.ident is not None}

    def _name(self, ident: int) -> str:
        name = self._names.get(ident)
        if name is None:
            self._refresh_names()
            name = self._names.get(ident, f"thread-{ident}")
        return name

    def _stack(self, frame: FrameType | None) -> tuple[int, ...]:
        codes = self._codes
        session = self.session
        cut = self.cut_after
        out: list[int] = []
        while frame is not None:
            code = frame.f_code
            if code is cut:
                break
            i = codes.get(code)
            if i is None:
                module = frame.f_globals.get("__name__", "?")
                i = codes[code] = session.frame_id(Frame(
                    str(module), code.co_qualname, code.co_filename, code.co_firstlineno,
                    is_library_file(code.co_filename)))
            out.append(i)
            frame = frame.f_back
        out.reverse()
        return tuple(out)

    def _stacks(self, frame: FrameType | None, skip: int | None) -> dict[int, tuple[int, ...]]:
        """Current stacks by thread id; the main thread's from the interrupted ``frame``."""
        main = threading.main_thread().ident
        out = {}
        for ident, f in sys._current_frames().items():
            if ident == skip:
                continue
            out[ident] = self._stack(frame if (ident == main and frame is not None) else f)
        return out

    # -- signal method ------------------------------------------------------------

    def _next_interval(self) -> float:
        # One-shot timers re-armed with a jittered interval (mean 1/rate): a fixed period
        # would alias with a periodic program (a simulation loop) and bias the shares.
        return (0.5 + self._rng.random()) / self.rate_hz

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        if not self._running:
            return
        if self._pre is None:
            # Phase 1, a moment before the sample: read the CPU clocks.
            self._pre = {i: c for i in sys._current_frames() if (c := self._thread_cpu(i)) is not None}
            self._t_pre = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, self._lead)
            return
        # Phase 2, the sample: the CPU each thread used since phase 1 says whether it is running.
        now = time.perf_counter()
        window = now - self._t_pre
        pre, self._pre = self._pre, None
        signal.setitimer(signal.ITIMER_REAL, max(self._next_interval() - self._lead, 1e-5))
        # Weight: the wall time since the previous sample. The handler runs late when another
        # thread holds the GIL, and the main thread sat where it is now all that time.
        tick, self._t_last = now - self._t_last, now
        self._record(self._stacks(frame, None), pre, window, tick)

    def _record(self, stacks: dict[int, tuple[int, ...]], pre: dict[int, float], window: float,
                tick: float | None = None) -> None:
        if tick is None:
            tick = 1.0 / self.rate_hz
        self.session.n_samples += 1
        wall, on = self._wall, self._on
        for ident, stack in stacks.items():
            if not stack:
                continue
            cpu = self._thread_cpu(ident)
            if cpu is None:
                used = tick if not _HAS_THREAD_CLOCKS else 0.0
            else:
                frac = min(max((cpu - pre[ident]) / window, 0.0), 1.0) if (ident in pre and window > 0) else 0.0
                # The short window classifies the sample (running or waiting right now); the CPU used
                # since the previous sample caps it, so time the thread sat descheduled before a late
                # handler is not counted as on-CPU.
                used = min(tick * frac, max(cpu - self._cpu.get(ident, 0.0), 0.0))
                self._cpu[ident] = cpu
            key = (self._name(ident), stack)
            wall[key] = wall.get(key, 0.0) + tick
            if used > 0:
                on[key] = on.get(key, 0.0) + used

    # -- thread method --------------------------------------------------------------

    def _run(self) -> None:
        interval = 1.0 / self.rate_hz
        lead = min(0.0005, interval / 4)
        me = threading.get_ident()
        wait = self._stop.wait
        last = time.perf_counter()
        rng = random.Random(0x9A5)
        # Jittered ticks (+-50%): a fixed period would alias with a periodic program.
        while not wait(interval * (0.5 + rng.random()) - lead):
            # CPU clocks a moment before the sample: the CPU used in that short window
            # tells whether each thread is running at the sample (on-CPU) or waiting.
            pre = {i: c for i in sys._current_frames() if i != me and (c := self._thread_cpu(i)) is not None}
            t_pre = time.perf_counter()
            if wait(lead):
                break
            now = time.perf_counter()
            self._record(self._stacks(None, me), pre, now - t_pre, now - last)
            last = now
