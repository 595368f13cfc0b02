# Sourced by scripts/test and scripts/try-local: the pinned moto in a virtualenv outside the
# checkout ($MATIH_VENV, default ~/.cache/matih-infra/venv), installed once.
MOTO_VERSION=5.2.5
venv="${MATIH_VENV:-$HOME/.cache/matih-infra/venv}"
if ! "$venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  echo "== installing moto[server]==$MOTO_VERSION into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi
export MOTO_SERVER="$venv/bin/moto_server"
