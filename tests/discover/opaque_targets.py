"""Functions that use objects of compiled (C) types: what discovery must see although it cannot trace them."""

from __future__ import annotations

import array
import ctypes
import datetime
import decimal
import hashlib

import numpy as np

SAMPLES = array.array("d")  # a C buffer, grown through its methods
RNG = np.random.default_rng(1)  # a module-level generator: drawing advances its state
CTX = decimal.Context(prec=28)  # a C type with settable properties
EPOCH = datetime.date(2000, 1, 1)  # an immutable C object, only read
HASH = hashlib.sha256()  # a C object whose state no attribute shows


class Point(ctypes.Structure):
    _fields_ = [("x", ctypes.c_double), ("y", ctypes.c_double)]


ORIGIN = Point(0.0, 0.0)


def record(x):
    SAMPLES.append(x)
    return 2.0 * x


def push_window(window, x):
    window.append(x)
    return sum(window) / len(window)


def window_mean(window):
    return sum(window) / len(window)


def noisy(x):
    return x + RNG.normal()


def jitter(x, rng):
    return x + rng.normal(size=np.shape(x))


def with_precision(digits, x):
    CTX.prec = digits
    return float(CTX.sqrt(decimal.Decimal(x)))


def move_origin(dx):
    ORIGIN.x += dx
    return ORIGIN.x


def years_since(year):
    return year - EPOCH.year


def fingerprint(x):
    HASH.update(np.float64(x).tobytes())
    return x * 3.0
