# Shared setup steps for scripts/serve and scripts/test (sourced, not run).

# Create .venv with the machine's Python 3 if needed and install Flaskr into it,
# editable, with the extras given (e.g. "[test]").
ensure_venv() {
  local extras="${1:-}"
  if [ ! -x .venv/bin/python ]; then
    if ! "${PYTHON:-python3}" -m venv .venv; then
      echo "Could not create a virtual environment: on Debian or Ubuntu, install python3-venv." >&2
      exit 1
    fi
  fi
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}"
}

# The browser tests drive Debian's Chromium; install it when it is missing and we can.
ensure_chromium() {
  if [ -x /usr/bin/chromium ]; then
    return
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing chromium for the browser tests..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is missing: 'sudo apt-get install chromium' lets the browser tests run." >&2
  fi
}
