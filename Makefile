# Two commands: `make demo` and `make test`. Each creates .venv if missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.phasm-installed

.PHONY: demo demo-pinn demo-native demo-fieldmap demo-tracking demo-calorimeter test bench install clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# torch is pinned and installed first: an unpinned resolve pulls a multi-GB CUDA build.
$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[all,test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) examples/heat/run_heat.py --out demo-output

demo-pinn: $(STAMP)
	$(PY) examples/pinn/run_pinn.py --out demo-output/pinn

# Calorimeter showers: a numpy Monte Carlo, a generative surrogate (flow) behind the stochastic gate (examples/calorimeter).
# About 3.5 minutes on 2 cores; FULL=1: the bigger configuration (10000 showers, about 10 minutes).
demo-calorimeter: $(STAMP)
	$(PY) examples/calorimeter/run_calorimeter.py --out demo-output/calorimeter $(if $(FULL),--full)

# The surrogate exported to C++ and Fortran programs (examples/native; Fortran skipped without gfortran).
demo-native: $(STAMP)
	$(MAKE) -C examples/native PYTHON=$(abspath $(PY)) PHASM=$(abspath $(VENV)/bin/phasm)

# The field map is built once into demo-output/.cache and shared by both demos.
demo-fieldmap: $(STAMP)
	$(PY) examples/fieldmap/run_fieldmap.py --out demo-output

demo-tracking: $(STAMP)
	$(PY) examples/tracking/run_tracking.py --out demo-output

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) demo-output captures models phasm-profile .pytest_cache
