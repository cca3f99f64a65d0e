#!/usr/bin/env bash
# The documentation site: `mkdocs build --strict` from mkdocs.yml and docs/ (a broken link or anchor,
# a missing snippet, capture or API object fails it). Nothing is fetched while it builds.
#
# Usage: .ci/docs_build.sh [PYTHON]
#   PYTHON: a python whose environment holds the `docs` extra's tools (mkdocs, mkdocs-material,
#   mkdocstrings). Without it, they are installed from pyproject.toml's `docs` extra into a fresh
#   virtual environment of their own: mkdocs-material needs requests>=2.26 while the test extra's
#   torchattacks pins requests~=2.25.1, so the two extras cannot share one. The build needs neither
#   torch nor an installed gat-tui (mkdocstrings reads the source; the hooks import gat_tui.config).
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if [ $# -ge 1 ]; then
  python="$(command -v "$1")"
else
  python3 -m venv "$work/venv"
  python="$work/venv/bin/python"
  python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["docs"]))' >"$work/docs-requirements.txt"
  "$python" -m pip install -q -r "$work/docs-requirements.txt"
fi
start=$SECONDS
NO_MKDOCS_2_WARNING=1 "$python" -m mkdocs build --strict --site-dir "$work/site"
echo "docs: mkdocs build --strict passed in $((SECONDS - start)) s ($(find "$work/site" -name index.html | wc -l) pages)"
