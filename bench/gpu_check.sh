#!/usr/bin/env bash
# One call on a machine with a GPU: `bench gpu` for the 0.5B and 7B shapes in 4-bit, JSON into $OUT.
# `bash bench/gpu_check.sh 0.5b` runs one shape (each takes up to ~5 minutes, the 7B build included).
# Prepare here first (no hub or PyPI there), then carry .gpu-carry:
#   mkdir -p .gpu-carry && python -c "from assistant.core import local_models as m; \
#     from transformers import AutoTokenizer as T; T.from_pretrained(m.ensure('smollm2')).save_pretrained('.gpu-carry/tokenizer')"
#   (optionally wheels the box lacks, e.g. bitsandbytes, into .gpu-carry/wheels/)
set -u
out="${OUT:-bench-results}"
mkdir -p "$out"
if compgen -G ".gpu-carry/wheels/*.whl" >/dev/null; then pip install -q --no-deps .gpu-carry/wheels/*.whl; fi
[ -d .gpu-carry/tokenizer ] && export GVLM_BENCH_TOKENIZER="$PWD/.gpu-carry/tokenizer"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python -c "import torch, transformers, bitsandbytes as b; print(torch.__version__, transformers.__version__, b.__version__)"
for shape in ${@:-0.5b 7b}; do
  timeout 290 python launch.py bench gpu --shape "$shape" --quantization 4bit --json "$out/gpu-$shape.json" 2>&1 \
    | grep -v -e '^Loading' -e 'it/s]' | tail -15
done
