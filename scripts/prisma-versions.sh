#!/usr/bin/env bash
# Runs the client tests (test/client.test.ts) against the lowest and the highest
# Prisma 7 release inside our peer range for @prisma/client and @prisma/adapter-pg
# (package.json peerDependencies). Each version is installed into a scratch copy of
# this checkout, never into it; the highest is whatever the registry has within the
# range (it may hold a newer prisma or adapter-pg than @prisma/client: each package
# gets its own highest). Uses DATABASE_URL's server when set, else embedded PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

range=$(node -p 'require("./package.json").peerDependencies["@prisma/client"]')
adapter_range=$(node -p 'require("./package.json").peerDependencies["@prisma/adapter-pg"]')
# npm view prints a version list; sort -V picks the ends of it.
versions() { npm view "$1@$2" version --json | node -e 'const v = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log([].concat(v).join("\n"))' | sort -V; }
client_versions=$(versions @prisma/client "$range")
adapter_versions=$(versions @prisma/adapter-pg "$adapter_range")
cli_versions=$(versions prisma "$range")

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
for end in lowest highest; do
  pick() { if [ "$end" = lowest ]; then head -n1; else tail -n1; fi; }
  client=$(echo "$client_versions" | pick)
  adapter=$(echo "$adapter_versions" | pick)
  cli=$(echo "$cli_versions" | pick)
  dir="$scratch/$end"
  mkdir -p "$dir"
  git ls-files -z | xargs -0 cp --parents -t "$dir"
  # Hard links: fast, and npm replaces (never writes into) the packages it changes.
  cp -al node_modules "$dir/node_modules"
  echo "== $end of $range: @prisma/client $client, @prisma/adapter-pg $adapter, prisma $cli"
  (
    cd "$dir"
    npm install --no-save --no-audit --no-fund --ignore-scripts --loglevel=error "@prisma/client@$client" "@prisma/adapter-pg@$adapter" "prisma@$cli" >/dev/null
    installed=$(node -p 'require("@prisma/client/package.json").version')
    [ "$installed" = "$client" ] || { echo "installed @prisma/client $installed, wanted $client"; exit 1; }
    node scripts/prisma-generate.mjs >/dev/null
    npx vitest run test/client.test.ts --reporter=dot
  ) || status=1
done
exit "$status"
