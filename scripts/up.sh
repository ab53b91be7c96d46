#!/usr/bin/env bash
# The README's run command: dependencies, the native stack, migrations, demo data, worker and API.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh
npx tsx stack/cli.ts up
npx tsx scripts/migrate.ts
npx tsx stack/cli.ts up --app >/dev/null
npx tsx scripts/urls.ts
