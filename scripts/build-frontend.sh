#!/usr/bin/env bash
# Builds the web portal into dist/ with Trunk, fully offline (tools pinned in Trunk.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
locked=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
pinned=$(sed -n 's/^wasm_bindgen = "\(.*\)".*/\1/p' Trunk.toml)
if [ "$locked" != "$pinned" ]; then
  echo "Trunk.toml pins wasm-bindgen $pinned but Cargo.lock has $locked: make them equal." >&2
  exit 1
fi
trunk build --release --offline "$@"
# Precompressed copies: the server sends them to browsers that accept gzip.
gzip -9 --keep --force dist/*.wasm dist/*.js dist/*.css
wasm=$(ls dist/*.wasm)
printf '[build-frontend] %s: %s bytes, %s bytes gzipped\n' "$wasm" "$(stat -c %s "$wasm")" "$(stat -c %s "$wasm.gz")" >&2
