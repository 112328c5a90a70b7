# progrestore: `make train` and `make test` work on a fresh machine (they create .venv first).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# CPU wheel of torch available on this kind of machine; keep it (a newer torch pulls CUDA wheels).
TORCH_SPEC ?= torch==2.13.0

.PHONY: help install train test test-fast lint bench bench-data bench-train bench-gpu bench-gpu-sharded bench-scale bench-errors dataset pretrain-tiny pretrain-tiny-wan bench-train-wan bench-vbridge bench-video bench-paper bench-codec vbridge-tiny sync-wandb clean demo browser demo-screenshot

help:
	@echo "make install     create $(VENV) with torch ($(TORCH_SPEC)) and the project (editable)"
	@echo "make train       LoRA fine-tuning, default run: task=lowlight prompt=adaptive (tiny model, CPU)"
	@echo "make dataset     build the bundled-photo deblur dataset under outputs/datasets/"
	@echo "make sync-wandb  upload offline W&B runs (needs WANDB_API_KEY in the environment)"
	@echo "make test        full test suite (slow end-to-end tests included)"
	@echo "make test-fast   tests not marked slow"
	@echo "make bench       both benchmarks -> experiments/benchmarks/"
	@echo "make bench-train the default run of each task (sr, deblur, lowlight) + eval on Set5 (19 min here at 1 thread)"
	@echo "make bench-errors the bad-input suite, every case and its one error line -> experiments/benchmarks/bad_inputs.md"
	@echo "make bench-gpu   full-size CogVideoX and Wan2.2 LoRA step time and memory (CUDA GPU only)"
	@echo "make bench-scale  one process vs DDP vs FSDP on the CPU, memory plan per strategy -> experiments/benchmarks/scale_out.*"
	@echo "make bench-gpu-sharded GPUS=8  the same steps sharded over GPUS GPUs (trainer=fsdp), LoRA and full fine-tuning"
	@echo "make bench-codec the tiny models' linear codec vs their learned VAEs, fit, block edges -> experiments/benchmarks/codec.*"
	@echo "make pretrain-tiny  regenerate the tiny model's pretrained base (codec fit + transformer; rerun to resume)"
	@echo "make pretrain-tiny-wan  the same for the tiny Wan2.2 (model=tiny_wan)"
	@echo "make bench-train-wan    bench-train with model=tiny_wan -> experiments/benchmarks/train_tiny_wan.*"
	@echo "make vbridge-tiny       experiment=vbridge_tiny end to end: stage 1, drift correction, eval per category (CPU)"
	@echo "make bench-video        video restoration: consistency settings x 3 tasks, a 10 s clip, 29.97 fps + audio -> experiments/benchmarks/video.*"
	@echo "make bench-vbridge      vbridge-tiny + curriculum and 5-vs-9-frame ablations -> experiments/benchmarks/vbridge_tiny.*"
	@echo "make lint        ruff"
	@echo "make demo CKPT=<run>  browser demo (Gradio) on http://127.0.0.1:8765/: upload a photo or clip, restore it"
	@echo "make demo-screenshot  the demo's pictures for docs/demo.md (headless Chromium) -> experiments/reports/demo/"
	@echo "make browser     install Debian's Chromium (/usr/bin/chromium) for the browser tests, if missing"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev,demo]"
	@# lpips is only a source of weight files: it imports torchvision, which cannot load here.
	$(PY) -m pip install --quiet --no-deps "lpips==0.1.4"
	touch $(STAMP)

install: $(STAMP)

# The browser tests (tests/test_demo.py) drive Debian's Chromium with Playwright's Python driver;
# `playwright install` (a browser download) cannot work here, so the browser comes from apt.
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ -x "$(CHROMIUM)" ]; then echo "browser: $(CHROMIUM) present"; else \
	  echo "browser: $(CHROMIUM) missing: apt-get update && apt-get install -y --no-install-recommends chromium"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium && \
	  echo "browser: installed $$($(CHROMIUM) --version 2>/dev/null)"; fi

dataset: $(STAMP)
	$(PY) -m src.build_dataset task=deblur

train: $(STAMP)
	$(PY) -m src.train task=lowlight prompt=adaptive

test: $(STAMP) browser
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(PY) -m ruff check src tests
	$(PY) -m ruff format --check src tests

bench: bench-data bench-train

bench-data: $(STAMP)
	$(PY) -m src.benchmarks.data_builder

bench-train: $(STAMP)
	$(PY) -m src.benchmarks.train_default --figure

bench-codec: $(STAMP)
	$(PY) -m src.benchmarks.codec

bench-errors: $(STAMP)
	$(PY) -m src.benchmarks.bad_inputs

bench-gpu: $(STAMP)     # needs a CUDA GPU: full-size CogVideoX and Wan2.2 LoRA steps -> experiments/benchmarks/gpu_step.*
	$(PY) -m src.benchmarks.gpu_step

bench-scale: $(STAMP)   # one process vs ddp_cpu vs fsdp_cpu (CPU) + the memory plan per strategy -> experiments/benchmarks/scale_out.*
	$(PY) -m src.benchmarks.scale_out

GPUS ?= 8
bench-gpu-sharded: $(STAMP)   # needs GPUS CUDA GPUs: the same steps sharded (trainer=fsdp), LoRA and full fine-tuning
	$(PY) -m torch.distributed.run --nproc_per_node=$(GPUS) -m src.benchmarks.gpu_step --shard --out experiments/benchmarks/gpu_step_sharded
	$(PY) -m torch.distributed.run --nproc_per_node=$(GPUS) -m src.benchmarks.gpu_step --shard --full --out experiments/benchmarks/gpu_step_sharded_full

pretrain-tiny: $(STAMP)
	$(PY) -m src.pretrain_tiny

pretrain-tiny-wan: $(STAMP)
	$(PY) -m src.pretrain_tiny --model tiny_wan

bench-train-wan: $(STAMP)
	$(PY) -m src.benchmarks.train_default --model tiny_wan --figure

vbridge-tiny: $(STAMP)   # the preset alone (resumable: finished runs under outputs/bench_vbridge are reused)
	$(PY) -m src.benchmarks.vbridge --skip-ablations

bench-vbridge: $(STAMP)
	$(PY) -m src.benchmarks.vbridge

bench-paper: $(STAMP)     # resumable: jobs with a record under experiments/benchmarks/paper_runs are skipped
	$(PY) -m src.benchmarks.paper

bench-video: $(STAMP)     # resumable: finished runs, evals and restores under outputs/bench_video are reused
	$(PY) -m src.benchmarks.video

CKPT ?=
demo: $(STAMP)
	@[ -n "$(CKPT)" ] || { echo "usage: make demo CKPT=<run dir | lora dir | .ckpt>"; exit 2; }
	$(PY) -m src.demo ckpt=$(CKPT)

demo-screenshot: $(STAMP) browser
	$(PY) -m src.benchmarks.demo_screenshot

sync-wandb: $(STAMP)
	@ls -d outputs/wandb/offline-run-* >/dev/null 2>&1 || { echo "no offline W&B runs under outputs/wandb/"; exit 1; }
	$(VENV)/bin/wandb sync outputs/wandb/offline-run-*

clean:
	rm -rf outputs/runs outputs/multiruns .pytest_cache .ruff_cache
