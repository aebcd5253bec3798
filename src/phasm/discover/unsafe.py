"""Calls that make a function unsafe (or unwise) to replace by a model.

One table, used by static analysis (dotted names resolved from the source)
and by dynamic analysis (the callables actually called).  A flag is one of
``io`` (files, printing, logging), ``random`` (global or module-level random
state), ``time`` (wall clock), ``network``, ``subprocess``, ``environment``.

Example
-------
>>> classify("builtins.print"), classify("numpy.random.normal"), classify("math.sin")
('io', 'random', None)
>>> classify("numpy.random.default_rng", n_args=1)  # seeded: fine
"""

from __future__ import annotations

FLAGS = ("io", "random", "time", "network", "subprocess", "environment", "nondeterministic", "raises")

_EXACT = {
    "builtins.print": "io", "builtins.open": "io", "builtins.input": "io", "io.open": "io",
    "os.system": "subprocess", "os.popen": "subprocess", "os.getenv": "environment",
    "os.environ": "environment", "os.remove": "io", "os.unlink": "io", "os.makedirs": "io",
    "os.mkdir": "io", "os.rename": "io", "os.write": "io", "os.read": "io", "os.listdir": "io",
    "time.time": "time", "time.time_ns": "time", "time.perf_counter": "time",
    "time.perf_counter_ns": "time", "time.monotonic": "time", "time.process_time": "time",
    "time.sleep": "time", "time.localtime": "time", "time.ctime": "time",
    "datetime.datetime.now": "time", "datetime.datetime.utcnow": "time",
    "datetime.datetime.today": "time", "datetime.date.today": "time",
    "sys.stdout.write": "io", "sys.stderr.write": "io",
    "numpy.save": "io", "numpy.savez": "io", "numpy.savez_compressed": "io", "numpy.savetxt": "io",
    "numpy.load": "io", "numpy.loadtxt": "io", "numpy.genfromtxt": "io", "numpy.fromfile": "io",
    "numpy.ndarray.tofile": "io", "json.dump": "io", "json.load": "io", "pickle.dump": "io",
    "pickle.load": "io",
}
_PREFIX = {
    "logging.": "io", "os._Environ": "environment", "io.": "io", "_io.": "io", "shutil.": "io", "h5py.": "io", "pathlib.": "io", "tempfile.": "io",
    "socket.": "network", "urllib.": "network", "http.": "network", "requests.": "network",
    "ftplib.": "network", "smtplib.": "network", "subprocess.": "subprocess",
    "random.": "random", "numpy.random.": "random", "secrets.": "random", "uuid.uuid4": "random",
}
# Random generators that are deterministic when given a seed argument.
_SEEDABLE = {
    "numpy.random.default_rng", "numpy.random.RandomState", "numpy.random.Generator",
    "numpy.random.SeedSequence", "numpy.random.PCG64", "numpy.random.MT19937", "random.Random",
}
_SEEDING = {"random.seed", "numpy.random.seed"}
# Method names that write files whatever the object (pathlib.Path, file objects).
IO_METHODS = {"write_text", "write_bytes", "read_text", "read_bytes", "tofile", "savefig", "to_csv", "to_hdf"}


def classify(qualname: str, *, n_args: int | None = None) -> str | None:
    """The flag a call of ``qualname`` raises (``None`` if harmless).

    ``n_args``: number of arguments at the call site, when known; a seedable
    generator constructed with arguments is taken as seeded.
    """
    if qualname in _SEEDABLE:
        return None if n_args else "random"
    if qualname in _SEEDING:
        return None
    if qualname in _EXACT:
        return _EXACT[qualname]
    for prefix, flag in _PREFIX.items():
        if qualname.startswith(prefix):
            if flag == "random" and qualname.rsplit(".", 1)[-1][:1].isupper():
                return None  # a class (e.g. numpy.random.Generator) used for typing or isinstance
            return flag
    return None


def is_seeding(qualname: str) -> bool:
    return qualname in _SEEDING
