"""Designs of experiments (Sobol, LHS, grid, random) and adaptive sampling, run on Dask into a store.

Example
-------
>>> from phasm.sampling import Space
>>> Space({"T": (1000, 1500), "P": (1, 40, "log"), "phi": 1.0}).names
('T', 'P')
"""

from phasm.sampling.design import METHODS, unit_design
from phasm.sampling.run import SampleResult, sample
from phasm.sampling.runfile import SampleRun, design_index, read_progress
from phasm.sampling.space import Space

__all__ = ["METHODS", "SampleResult", "SampleRun", "Space", "design_index", "read_progress", "sample", "unit_design"]
