# Sourced by scripts/test: the pinned Azurite (the Azure Storage emulator, npm package `azurite`)
# outside the checkout ($MATIH_AZURITE_DIR, default ~/.cache/matih-infra/azurite), installed once.
# The remote-state tests start its blob service on 127.0.0.1 themselves.
AZURITE_VERSION=3.37.0
azurite_dir="${MATIH_AZURITE_DIR:-$HOME/.cache/matih-infra/azurite}"
if ! grep -qs "\"version\": \"$AZURITE_VERSION\"" "$azurite_dir/node_modules/azurite/package.json"; then
  echo "== installing azurite@$AZURITE_VERSION into $azurite_dir" >&2
  mkdir -p "$azurite_dir"
  npm install --prefix "$azurite_dir" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >&2
fi
export AZURITE_BLOB="$azurite_dir/node_modules/.bin/azurite-blob"
