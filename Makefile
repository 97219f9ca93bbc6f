# `make demo` and `make test` set up .venv on a fresh machine, then run.
# torch is pinned through constraints.txt in every install step: an unpinned
# torch pulls gigabytes of CUDA packages.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q -c constraints.txt
STAMP := $(VENV)/.installed

.PHONY: setup demo test typecheck lint clean cpp-deps

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e '.[all,dev]'
	$(PY) -m pip install -q --no-deps tensorrt-stubs  # type stubs only: TensorRT itself needs NVIDIA's index
	touch $(STAMP)

demo: setup
	$(PY) scripts/demo.py

test: setup cpp-deps
	$(PY) -m pytest -q

# The C++ example's JSON library, from the distribution's packages (tests/test_cpp.py skips, saying so,
# without it). Needs root and apt-get; elsewhere it only says what is missing.
cpp-deps:
	@test -f /usr/include/nlohmann/json.hpp || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nlohmann-json3-dev >/dev/null; } || \
	  echo "nlohmann-json3-dev is not installed: the C++ example's test will skip"

# tensorrt-stubs has no py.typed marker (mypy would silently treat TensorRT as Any) and a few invalid
# signatures: prepare_trt_stubs.py writes a repaired copy and a mypy config that uses it.
TRT_TYPED := edgeres/backends/tensorrt.py edgeres/backends/tensorrt_cuda.py edgeres/backends/tensorrt_runner.py \
            edgeres/backends/tensorrt_plan.py \
            edgeres/kit/build.py edgeres/kit/write.py edgeres/kit/layout.py \
            edgeres/backends/tensorrt_recipes.py edgeres/backends/tensorrt_device.py edgeres/backends/tensorrt_fp16.py \
            edgeres/backends/tensorrt_lint.py edgeres/backends/tensorrt_lint_qdq.py edgeres/backends/tensorrt_ops.py \
            edgeres/backends/tensorrt_proof.py \
            edgeres/backends/tensorrt_render.py edgeres/backends/tensorrt_target.py edgeres/kit/readme.py

typecheck: setup
	$(PY) scripts/prepare_trt_stubs.py build/trt-stubs >/dev/null
	$(PY) -m mypy --config-file build/trt-stubs/mypy.ini $(TRT_TYPED)

lint: setup
	$(VENV)/bin/ruff check edgeres tests scripts

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache demo-out
