#!/usr/bin/env bash
# Fetch the libraries pinned in deps/*.mtb without ModusToolbox, where
# ModusToolbox's `make getlibs` would put them: ../mtb_shared/<name>/<tag>.
#
#   ./getlibs.sh           clone each library at its tag (a clone already
#                          there at that tag is reused)
#   ./getlibs.sh --check   only ask each repository whether the tag exists
#
# The addresses are the real GitHub ones. To build from local mirrors, let
# git rewrite them (url.<mirror>.insteadOf https://github.com/), as
# scripts/git_mirror.sh does.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
shared=${MTB_SHARED:-$here/../mtb_shared}
check=0
[ "${1:-}" = "--check" ] && check=1

status=0
for mtb in "$here"/deps/*.mtb; do
    # URL#TAG#$$ASSET_REPO$$/<name>/<tag>
    IFS='#' read -r url tag location < "$mtb" || true
    name=$(basename "$url" .git)
    if [ -z "$url" ] || [ -z "$tag" ] || [ "$location" != "\$\$ASSET_REPO\$\$/$name/$tag" ]; then
        echo "getlibs: $mtb: expected one line URL#TAG#\$\$ASSET_REPO\$\$/$name/TAG" >&2
        status=1
        continue
    fi
    if [ $check -eq 1 ]; then
        if git ls-remote --exit-code --tags "$url" "refs/tags/$tag" >/dev/null 2>&1; then
            echo "getlibs: $name $tag exists"
        else
            echo "getlibs: $mtb: $url has no tag $tag (git ls-remote --tags $url lists them)" >&2
            status=1
        fi
        continue
    fi
    dest=$shared/$name/$tag
    if [ -d "$dest/.git" ] && git -C "$dest" tag --points-at HEAD 2>/dev/null | grep -qxF "$tag"; then
        continue
    fi
    echo "getlibs: $name $tag"
    rm -rf "$dest.partial"
    mkdir -p "$(dirname "$dest")"
    if ! git -c advice.detachedHead=false clone -q --depth 1 --branch "$tag" "$url" "$dest.partial"; then
        echo "getlibs: $mtb: could not clone $url at $tag" >&2
        rm -rf "$dest.partial"
        status=1
        continue
    fi
    rm -rf "$dest"
    mv "$dest.partial" "$dest"
done
exit $status
