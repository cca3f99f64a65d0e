#!/usr/bin/env bash
# The wheel works outside the checkout: build it from the working tree, install it into a fresh
# virtual environment, and from an empty folder run `gat-tui presets` and one epoch of the
# `synthetic_smoke` preset by name (the presets are package data, not ./presets).
#
# Usage: .ci/wheel_check.sh [PYTHON]
#   PYTHON: a python whose environment holds gat-tui's dependencies (default: `python`, the active
#   virtual environment; .ci/run passes its own). About 40 s on the shared 2-core development machine.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
deps_python="$(command -v "${1:-python}")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
unset PYTHONPATH  # a developer's PYTHONPATH=$PWD would import the checkout instead of the wheel

# The wheel is built from a copy of the files git sees (tracked and new, not ignored), so a stale
# build/ or *.egg-info left by an earlier build cannot slip files into it.
mkdir "$work/src"
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' file; do if [ -e "$file" ] || [ -L "$file" ]; then printf '%s\0' "$file"; fi; done \
  | tar --null -cf - -T - | tar -xf - -C "$work/src"
"$deps_python" -m pip wheel --no-deps -q -w "$work/dist" "$work/src" 2>"$work/build.log" || { cat "$work/build.log" >&2; exit 1; }
wheel=("$work"/dist/gat_tui-*.whl)
shipped=$(find "$work/src/gat_tui/preset_files" -name '*.toml' | wc -l)
in_wheel=$("$deps_python" -c 'import sys, zipfile; print(sum(n.startswith("gat_tui/preset_files/") and n.endswith(".toml") for n in zipfile.ZipFile(sys.argv[1]).namelist()))' "${wheel[0]}")
if [ "$in_wheel" -ne "$shipped" ]; then
  echo "wheel check: the wheel holds $in_wheel preset and sweep files of the $shipped in gat_tui/preset_files" >&2
  exit 1
fi
# the Python API's type hints reach users' type checkers only with the PEP 561 marker, and the
# presets' first line names the JSON Schema beside them (for editors)
for file in gat_tui/py.typed gat_tui/preset_files/preset.schema.json; do
  if ! "$deps_python" -c 'import sys, zipfile; sys.exit(sys.argv[2] not in zipfile.ZipFile(sys.argv[1]).namelist())' "${wheel[0]}" "$file"; then
    echo "wheel check: the wheel lacks $file (package data in pyproject.toml)" >&2
    exit 1
  fi
done

# A fresh environment that takes its dependencies from PYTHON's through a .pth line, instead of a
# second install of torch and the rest (about 5 GB and minutes): what is checked is the wheel's own
# files. A plain path line in a .pth does not run that environment's own .pth files, so its
# editable gat-tui (the checkout) stays out; the import below makes sure.
"$deps_python" -m venv --without-pip "$work/venv"
site_of() { "$1" -c 'import sysconfig; print(sysconfig.get_path("purelib")); print(sysconfig.get_path("platlib"))' | sort -u; }
site_of "$deps_python" >"$(site_of "$work/venv/bin/python" | head -n 1)/gat_tui_dependencies.pth"
"$deps_python" -m pip --python "$work/venv/bin/python" install --no-deps -q "${wheel[0]}"

mkdir "$work/empty"
cd "$work/empty"
export GAT_TUI_DATA_DIR="$work/datasets" GAT_TUI_RUNS_DIR="$work/runs"
imported=$("$work/venv/bin/python" -c 'import gat_tui; print(gat_tui.__file__)')
case "$imported" in
  "$work/venv/"*) ;;
  *) echo "wheel check: gat_tui was imported from $imported, not from the wheel" >&2; exit 1 ;;
esac
# the Python API from the wheel: its lazy names resolve and GAT builds Table 1's generator
"$work/venv/bin/python" -c 'import gat_tui as gt, torch; gt.GAT(torch.nn.Flatten(), (3, 8, 8)); print(gt.attacks.PGDLinf, gt.load, gt.train, gt.evaluate)' >/dev/null
"$work/venv/bin/gat-tui" presets >"$work/presets.txt"
listed=$(grep -c . "$work/presets.txt")
if [ "$listed" -ne "$(find "$work/src/gat_tui/preset_files" -maxdepth 1 -name '*.toml' | wc -l)" ] || ! grep -q '^synthetic_smoke ' "$work/presets.txt"; then
  echo "wheel check: gat-tui presets listed $listed presets:" >&2
  cat "$work/presets.txt" >&2
  exit 1
fi
"$work/venv/bin/python" -c 'from gat_tui.presets import resolve_sweep; resolve_sweep("table2_cifar10")'
# one epoch on a quarter of the preset's images (6 steps): enough to show the named preset loads,
# trains, validates, tests and writes its checkpoint from the installed package
"$work/venv/bin/gat-tui" run synthetic_smoke --headless --epochs 1 --device cpu --out "$work/run" \
  --set data.train_size=256 --set data.val_size=64 --set data.test_size=64 >"$work/run.log" 2>&1 \
  || { cat "$work/run.log" >&2; exit 1; }
test -f "$work/run/checkpoints/best.safetensors" || { echo "wheel check: the run left no best checkpoint" >&2; exit 1; }
echo "wheel check: ${wheel[0]##*/} ($in_wheel preset and sweep files) installed outside the checkout lists $listed presets and trains synthetic_smoke by name ($((SECONDS - start)) s)"
