#!/usr/bin/env bash
# Installs the npm dependencies when they are missing or older than the lockfile; reuses npm's cache (~/.npm).
set -euo pipefail
cd "$(dirname "$0")/.."

node -e 'const [M,m]=process.versions.node.split(".").map(Number); if (M<20||(M===20&&m<19)) { console.error(`Cadenza needs Node.js >= 20.19 (found ${process.version})`); process.exit(1) }'

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "installing npm dependencies (npm ci)…"
  npm ci --prefer-offline --no-audit --no-fund
fi
