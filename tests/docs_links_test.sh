#!/usr/bin/env bash
# Fails when the documentation points where a reader cannot follow:
#  (a) a tracked file (outside tests/fuzz/corpus) cites the research notes,
#      design draft or seed reports that live outside this repository;
#  (b) a relative markdown link [text](path) in README.md, docs/*.md or
#      traces/*.md (and traces/*/*.md) names a file that does not exist.
# Needs no build. Usage: docs_links_test.sh REPO_ROOT
set -u
root=${1:?usage: docs_links_test.sh REPO_ROOT}
root=${root%/}
fail=0

# (a) Citations of files outside the repository. The patterns are spelled in
# two halves so that this script does not match itself.
outside="shared"
patterns=(-e "$outside/notes/" -e "$outside/DESIGN.md" -e "$outside/seeds/")
if command -v git >/dev/null 2>&1 && git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  hits=$(git -C "$root" grep -n -I "${patterns[@]}" -- . ':(exclude)tests/fuzz/corpus')
  rc=$?
  if [ $rc -gt 1 ]; then
    echo "docs links: git grep failed in $root (exit $rc)"
    exit 2
  fi
else
  hits=$(cd "$root" && grep -rnI "${patterns[@]}" --exclude-dir=.git --exclude-dir=build . |
         sed 's#^\./##' | grep -v '^tests/fuzz/corpus/')
fi
if [ -n "$hits" ]; then
  while IFS= read -r line; do
    file=${line%%:*}; rest=${line#*:}; lineno=${rest%%:*}; text=${rest#*:}
    echo "$file:$lineno: cites a file that is not in this repository: $(echo "$text" | sed 's/^[[:space:]]*//')"
  done <<<"$hits"
  fail=1
fi

# (b) Relative markdown links. Fenced code blocks and `code spans` are skipped;
# http(s)://, mailto: and #anchor links are not files; a trailing #anchor is
# dropped; a leading / means the repository root.
files=()
for f in "$root"/README.md "$root"/docs/*.md "$root"/traces/*.md "$root"/traces/*/*.md; do
  [ -f "$f" ] && files+=("$f")
done
for f in "${files[@]}"; do
  rel=${f#"$root"/}
  dir=$(dirname "$f")
  while IFS=$'\t' read -r lineno target; do
    [ -z "$target" ] && continue
    case $target in
      http://*|https://*|mailto:*|'#'*) continue ;;
    esac
    path=${target%%#*}
    [ -z "$path" ] && continue
    if [ "${path#/}" != "$path" ]; then resolved="$root$path"; else resolved="$dir/$path"; fi
    if [ ! -e "$resolved" ]; then
      echo "$rel:$lineno: link target does not exist: $target"
      fail=1
    fi
  done < <(awk '
    /^[[:space:]]*(```|~~~)/ { fence = !fence; next }
    fence { next }
    {
      line = $0
      gsub(/`[^`]*`/, "", line)
      while (match(line, /\[[^]]*\]\([^)]*\)/)) {
        link = substr(line, RSTART, RLENGTH)
        line = substr(line, RSTART + RLENGTH)
        sub(/^\[[^]]*\]\(/, "", link)
        sub(/\)$/, "", link)
        sub(/^[[:space:]]+/, "", link)
        sub(/[[:space:]].*$/, "", link)   # drop a "title"
        sub(/^</, "", link); sub(/>$/, "", link)
        print FNR "\t" link
      }
    }' "$f")
done

if [ $fail -eq 0 ]; then
  echo "docs links: ${#files[@]} files checked, all resolve"
fi
exit $fail
