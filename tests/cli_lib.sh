# Shared by the CLI test scripts: `source "$(dirname "$0")/cli_lib.sh" "$@"`.
# Sets bin (the residency binary), root (the source tree), tmp (removed on
# exit) and fail; `expect CODE PATTERN -- command...` checks the exit code
# and that the output matches the extended regex.
bin=${1:?usage: $0 RESIDENCY_BIN SOURCE_ROOT}; root=${2:?usage: $0 RESIDENCY_BIN SOURCE_ROOT}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail=0
expect() {
  local code=$1 pattern=$2; shift 3
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" != "$code" ] || ! grep -qE -- "$pattern" <<<"$out"; then
    echo "FAIL: $* -> rc=$rc, wanted $code and /$pattern/; got: $out"; fail=1
  fi
}
