#!/usr/bin/env bash
# Send git's https://github.com/ addresses to a folder of local bare mirrors
# laid out by address (MIRROR/github.com/<owner>/<name>.git), through git's
# own URL rewriting, so that scripts keep the real addresses:
#
#   source scripts/git_mirror.sh ../shared/vendor/git
#
# A mirror copied without its empty folders (refs/) or made read-only is not
# a repository to git; each one is then exposed through a small writable
# stand-in (its own refs/ and HEAD, the mirror's objects and packed-refs
# linked) under ${KEYSPOT_CACHE:-~/.cache/keyspot}/git-mirror.
mirror=$(cd "${1:?usage: source scripts/git_mirror.sh MIRROR_FOLDER}" && pwd)/github.com
if [ ! -d "$mirror" ]; then
    echo "git_mirror: $mirror does not exist" >&2
    return 1 2>/dev/null || exit 1
fi
stand_in=${KEYSPOT_CACHE:-$HOME/.cache/keyspot}/git-mirror/github.com
for repo in "$mirror"/*/*.git; do
    rel=${repo#"$mirror"/}
    target=$stand_in/$rel
    mkdir -p "$target"
    cp -f "$repo/HEAD" "$target/HEAD"   # a linked HEAD reads as a symbolic ref
    [ -d "$repo/refs" ] || mkdir -p "$target/refs"
    for part in objects packed-refs refs; do
        [ -e "$repo/$part" ] && ln -sfn "$repo/$part" "$target/$part"
    done
done
export GIT_CONFIG_COUNT=1
export GIT_CONFIG_KEY_0="url.file://$stand_in/.insteadOf"
export GIT_CONFIG_VALUE_0="https://github.com/"
echo "git_mirror: https://github.com/ -> $stand_in" >&2
