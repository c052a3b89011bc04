# Shared setup steps for scripts/serve and scripts/test (sourced, not run).

# Debian packages the tests need: the browser tests drive Debian's Chromium, the PostgreSQL
# tests start a throwaway cluster with its server's programs, and the test of several servers
# puts nginx in front of them. The tests never use the cluster Debian's postgresql package
# starts on port 5432: theirs listens only on a socket in its own temporary folder.
TEST_PACKAGES=(chromium postgresql nginx)

# Python for the set-up's own small steps: the one in .venv once it exists, since starting
# it skips whatever wrapper may stand in front of the machine's python3.
setup_python() {
  if [ -x .venv/bin/python ]; then
    .venv/bin/python "$@"
  else
    "${PYTHON:-python3}" "$@"
  fi
}

# The digest of a lock and pyproject.toml: what the last successful install was made from.
install_digest() {
  cat "requirements/$1.txt" pyproject.toml | setup_python -c \
    'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'
}

# Create .venv with the machine's Python 3 if needed and install the lock named (serve or
# test) and Flaskr itself, editable. .venv/installed records what was installed, so nothing
# is installed again while the locks and pyproject.toml stay as they are; the test lock
# holds everything the serve lock does, so it serves too. pip's output goes to
# .venv/install.log and is shown only when something fails.
ensure_venv() {
  local lock="$1" name accepted=("$1")
  [ "$lock" = serve ] && accepted+=(test)
  if [ ! -x .venv/bin/python ]; then
    if ! "${PYTHON:-python3}" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      echo "Flaskr needs Python 3.11 or newer; $("${PYTHON:-python3}" --version 2>&1) found." >&2
      exit 1
    fi
    echo "Creating .venv..."
    if ! "${PYTHON:-python3}" -m venv .venv; then
      echo "Could not create a virtual environment: on Debian or Ubuntu, install python3-venv." >&2
      exit 1
    fi
  fi
  for name in "${accepted[@]}"; do
    if [ "$(cat .venv/installed 2>/dev/null)" = "$name $(install_digest "$name")" ]; then
      return
    fi
  done
  echo "Installing Flaskr and its dependencies..."
  rm -f .venv/installed
  if ! {
    .venv/bin/python -m pip install --disable-pip-version-check --require-hashes \
      -r "requirements/$lock.txt" &&
      .venv/bin/python -m pip install --disable-pip-version-check --no-deps \
        --no-build-isolation -e .
  } >.venv/install.log 2>&1; then
    cat .venv/install.log >&2
    echo "Installing failed; pip's output is above and in .venv/install.log." >&2
    exit 1
  fi
  echo "$lock $(install_digest "$lock")" >.venv/installed
}

# Install the Debian packages named when they are missing and we can (as root, with apt).
ensure_debian_packages() {
  local package missing=()
  for package in "$@"; do
    if [ "$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null)" != installed ]; then
      missing+=("$package")
    fi
  done
  [ "${#missing[@]}" = 0 ] && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing ${missing[*]} (Debian packages) for the tests..."
    mkdir -p .venv
    if ! {
      apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    } >.venv/apt.log 2>&1; then
      cat .venv/apt.log >&2
      echo "Installing ${missing[*]} failed; apt-get's output is above." >&2
      exit 1
    fi
  else
    echo "Missing Debian packages: ${missing[*]}; 'sudo apt-get install ${missing[*]}' lets" \
      "the tests that need them run." >&2
  fi
}
