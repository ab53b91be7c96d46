#!/usr/bin/env bash
# The README's run command: dependencies, the native stack, migrations, worker + sink + API, demo data.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh
npx tsx stack/cli.ts up
npx tsx scripts/migrate.ts
npx tsx stack/cli.ts up --app >/dev/null
# Temporal Schedules declared in the slices' contracts (the monthly royalty settlement …); idempotent.
npx tsx scripts/schedules.ts
# An empty system gets the small demo dataset; its ticks go through Kafka and the sink like real traffic.
npx tsx scripts/seed.ts --scale small --if-empty
# Three subscriptions on the minutes-long demo plan, to watch renewals, grace and downgrades in the Web UI.
npx tsx scripts/demo-subscriptions.ts --if-empty
npx tsx scripts/urls.ts
