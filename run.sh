#!/usr/bin/env bash
# edge_ssl: set-up and entry point. Each command sets up what it needs first, idempotently:
#   .venv with the pinned requirements, Bazel (Debian's bazel-bootstrap through apt when root), .bazelrc.venv,
#   tcmalloc (libtcmalloc-minimal4 through apt when root; optional), preloaded into every command (EDGE_SSL_MALLOC=system: not).
#
#   ./run.sh demo [--output_dir=DIR] [flags]   the main job (python -m edge_ssl.cli.demo)
#   ./run.sh test [bazel test args]            every test: lint, then `bazel test //...`; ends with "N passed, N failed"
#   ./run.sh setup                             only the set-up
#   ./run.sh format                            apply black and isort
#   ./run.sh python [args]                     the project's Python with the package importable
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.edge_ssl_installed"
RC_VENV="$ROOT/.bazelrc.venv"
REQUIRED_PYTHON="3.11"
PACKAGES="tensorflow tf_keras tensorflow_datasets cv2 onnx onnxruntime tf2onnx ai_edge_litert numpy absl tensorboard matplotlib"
FIND_PACKAGES="import importlib.util, sys; sys.exit(any(importlib.util.find_spec(m) is None for m in '$PACKAGES'.split()))"

say() { printf '[run.sh] %s\n' "$*" >&2; }
die() { printf 'run.sh: error: %s\n' "$*" >&2; exit 2; }

usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
}

find_python() {
  local candidate
  for candidate in "${EDGE_SSL_PYTHON:-}" "python$REQUIRED_PYTHON" python3; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c "import sys; sys.exit(sys.version_info[:2] != (3, 11))" 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  die "Python $REQUIRED_PYTHON not found (tried \$EDGE_SSL_PYTHON, python$REQUIRED_PYTHON, python3).
Install Python $REQUIRED_PYTHON (Debian/Ubuntu: apt-get install python3.11 python3.11-venv) or point
EDGE_SSL_PYTHON at one, then run this command again."
}

# What the installed .venv must match: the requirements file and the interpreter it was made with.
wanted_stamp() {
  local py="$1"
  printf '%s %s\n' "$(sha256sum "$ROOT/requirements.txt" | cut -d' ' -f1)" \
    "$("$py" -c 'import sys; print(sys.version.split()[0])')"
}

ensure_venv() {
  local py want
  # Fast path: the stamp matches and every top-level package is still there (found, not imported: milliseconds).
  if [ -f "$STAMP" ] && "$VENV/bin/python" -c "$FIND_PACKAGES" 2>/dev/null; then
    want="$(wanted_stamp "$VENV/bin/python")"
    [ "$(cat "$STAMP")" = "$want" ] && return 0
  fi
  py="$(find_python)"
  # A .venv whose interpreter no longer runs (moved, or Python removed) cannot be repaired in place.
  if ! "$VENV/bin/python" -c "import sys; sys.exit(sys.version_info[:2] != (3, 11))" 2>/dev/null; then
    say "creating .venv with $py"
    rm -rf "$VENV"
    "$py" -m venv "$VENV" || die "could not create $VENV with $py.
On Debian/Ubuntu install the venv module (apt-get install python3.11-venv) and run this command again."
  fi
  # The stamp goes only after a complete install, so an interrupted one is resumed by the next run:
  # pip skips what is already there and installs the rest.
  rm -f "$STAMP"
  say "installing pinned requirements into .venv (first run: several minutes)"
  "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet -r "$ROOT/requirements.txt" \
    || die "pip could not install requirements.txt into $VENV (see the messages above).
Run this command again to resume; delete $VENV to start over."
  "$VENV/bin/python" -c "import ${PACKAGES// /, }" \
    || die "the packages in $VENV do not import (see above); delete $VENV and run this command again."
  wanted_stamp "$VENV/bin/python" > "$STAMP.tmp"
  mv "$STAMP.tmp" "$STAMP"
  say "requirements installed"
}

BAZEL=""
ensure_bazel() {
  if command -v bazel >/dev/null 2>&1; then
    BAZEL="$(command -v bazel)"
  elif command -v bazelisk >/dev/null 2>&1; then
    BAZEL="$(command -v bazelisk)"
    export USE_BAZEL_VERSION="${USE_BAZEL_VERSION:-4.2.3}"
  elif command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing Bazel (Debian's bazel-bootstrap) with apt-get"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bazel-bootstrap >/dev/null; } \
      || die "apt-get could not install bazel-bootstrap (see above). Install Bazel 4.2.3 by hand and run again."
    BAZEL="$(command -v bazel)" || die "bazel-bootstrap installed, but no 'bazel' is on PATH"
  else
    die "Bazel is not installed, and it cannot be installed from here (needs apt-get and root).
Install one of:
  - Debian/Ubuntu: sudo apt-get install bazel-bootstrap   (Bazel 4.2.3, works offline)
  - bazelisk (https://github.com/bazelbuild/bazelisk): this script then runs Bazel 4.2.3 through it
and run this command again."
  fi
}

write_bazelrc_venv() {
  local content
  case "$ROOT" in
    *" "*) die "Bazel cannot build in a path with spaces: $ROOT. Clone edge_ssl somewhere without spaces." ;;
  esac
  content="# Generated by run.sh for this checkout; not committed. See .bazelrc.
build --python_path=$VENV/bin/python"
  if [ "${EDGE_SSL_MALLOC:-}" != "system" ] && tcmalloc_installed; then
    content="$content
test --test_env=LD_PRELOAD=$TCMALLOC --test_env=TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD=$TCMALLOC_REPORT_BYTES"
  fi
  if [ ! -f "$RC_VENV" ] || [ "$(cat "$RC_VENV")" != "$content" ]; then
    printf '%s\n' "$content" > "$RC_VENV.tmp"
    mv "$RC_VENV.tmp" "$RC_VENV"
  fi
}

# tcmalloc (edge_ssl/allocator.py says why): installed with apt when root and missing, never required.
TCMALLOC="libtcmalloc_minimal.so.4"
# tcmalloc reports every allocation above this (1 GiB by default); a training batch can pass that legitimately.
TCMALLOC_REPORT_BYTES=1099511627776
tcmalloc_installed() {
  local ldconfig
  ldconfig="$(command -v ldconfig || echo /sbin/ldconfig)"
  # grep reads it all (no -q): an early exit would kill ldconfig with SIGPIPE, which pipefail reports as absence
  "$ldconfig" -p 2>/dev/null | grep "$TCMALLOC " >/dev/null
}

ensure_tcmalloc() {
  local tried="$VENV/.tcmalloc_tried"
  [ "${EDGE_SSL_MALLOC:-}" = "system" ] && return 0
  tcmalloc_installed && return 0
  [ -f "$tried" ] && return 0  # asked once per .venv; the CLIs' environment line keeps saying it
  touch "$tried"
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing tcmalloc (libtcmalloc-minimal4) with apt-get: training runs faster on it"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libtcmalloc-minimal4 >/dev/null; } \
      || say "apt-get could not install libtcmalloc-minimal4; going on with glibc's malloc"
  else
    say "tcmalloc is not installed; training can be much faster with it: sudo apt-get install libtcmalloc-minimal4"
  fi
}

# LD_PRELOAD for the commands run.sh starts: tcmalloc where installed, unless EDGE_SSL_MALLOC=system.
preload_tcmalloc() {
  [ "${EDGE_SSL_MALLOC:-}" = "system" ] && return 0
  tcmalloc_installed || return 0
  case " ${LD_PRELOAD:-} " in *tcmalloc*) return 0 ;; esac
  export LD_PRELOAD="$TCMALLOC${LD_PRELOAD:+ $LD_PRELOAD}"
  export TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD="${TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD:-$TCMALLOC_REPORT_BYTES}"
}

# Bazel's Python stub starts with `#!/usr/bin/env python`; with .venv/bin first on PATH that is our interpreter.
run_bazel() {
  (cd "$ROOT" && PATH="$VENV/bin:$PATH" "$BAZEL" "$@")
}

cmd_test() {
  ensure_venv
  ensure_bazel
  ensure_tcmalloc
  write_bazelrc_venv
  local rc log labels
  log="$(mktemp)"
  labels="$(mktemp)"
  # shellcheck disable=SC2064  # expand now: the locals are gone when the trap runs
  trap "rm -f '$log' '$labels'" EXIT

  say "checking format (black, isort)"
  if ! (cd "$ROOT" && "$VENV/bin/black" --check . && "$VENV/bin/isort" --check-only .); then
    die "files above are not formatted; run ./run.sh format and commit the result."
  fi
  say "checking that every *_test.py has a py_test target, and the one Keras import"
  run_bazel query --noshow_progress 'labels(srcs, kind(py_test, //...))' > "$labels" \
    || die "bazel query failed (see above)"
  (cd "$ROOT" && "$VENV/bin/python" -m tools.lint --test_srcs="$labels") || die "lint failed (see above)"

  say "bazel test //... $*"
  set +e
  run_bazel test //... "$@" 2>&1 | tee "$log"
  rc="${PIPESTATUS[0]}"
  set -e
  (cd "$ROOT" && "$VENV/bin/python" -m tools.test_summary --bazel_log="$log" --bazel_exit_code="$rc")
}

cmd_python() {
  ensure_venv
  ensure_tcmalloc
  preload_tcmalloc
  # oneDNN on every CPU (edge_ssl/__init__.py says why), also for scripts that import TensorFlow before edge_ssl.
  PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" TF_USE_LEGACY_KERAS=1 TF_ENABLE_ONEDNN_OPTS="${TF_ENABLE_ONEDNN_OPTS:-1}" \
    exec "$VENV/bin/python" "$@"
}

main() {
  local command="${1:-}"
  [ $# -gt 0 ] && shift
  case "$command" in
    demo) cmd_python -m edge_ssl.cli.demo "$@" ;;
    test) cmd_test "$@" ;;
    setup) ensure_venv; ensure_bazel; ensure_tcmalloc; write_bazelrc_venv; say "set-up complete" ;;
    format) ensure_venv; cd "$ROOT" && "$VENV/bin/isort" --quiet . && "$VENV/bin/black" --quiet . ;;
    python) cmd_python "$@" ;;
    -h|--help|help) usage ;;
    "") usage; exit 2 ;;
    *) usage; die "unknown command '$command'" ;;
  esac
}

main "$@"
