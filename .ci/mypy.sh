#!/usr/bin/env bash
# mypy over placer, placer.ir and placer.backends with the repository's [tool.mypy] configuration.
#
# pyproject.toml maps placer.ir to ir/ and placer.backends to backends/ (package-dir), which mypy
# cannot follow through the editable install; so this builds the installed layout as a view of
# symlinks (placer/*, placer/ir -> ir, placer/backends -> backends) and
# checks it there. The view and mypy's cache sit in .mypy_cache/ (ignored by git) at a fixed path,
# so that a second run is incremental. Exits with mypy's status (0: no errors). Extra arguments
# go to mypy.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
view="$repo/.mypy_cache/view"
rm -rf "$view"
mkdir -p "$view/placer"
for f in "$repo"/placer/*; do
    ln -s "$f" "$view/placer/"
done
ln -s "$repo/ir" "$view/placer/ir"
ln -s "$repo/backends" "$view/placer/backends"
cp "$repo/pyproject.toml" "$view/"
cd "$view"
exec python -m mypy --cache-dir "$repo/.mypy_cache/cache" "$@" -p placer
