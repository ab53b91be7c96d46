#!/usr/bin/env bash
# The README's test command: provisions what is missing, starts the stack, runs every test layer.
# One layer alone: npm run test:unit | test:workflow (no stack) | test:integration | test:e2e (stack).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh
echo "== static checks"
npx tsc --noEmit -p .
npx eslint --max-warnings 0 .
npx prettier --check . >/dev/null || { echo "prettier: files need formatting (npm run format)"; exit 1; }

echo "== stack"
npx tsx stack/cli.ts up
npx tsx scripts/migrate.ts

results=.stack/test-results
mkdir -p "$results"
status=0
echo "== unit and workflow tests (no stack needed)"
npx jest --ci --selectProjects unit workflow --json --outputFile "$results/fast.json" || status=1
echo "== integration, end-to-end and fault tests (real services)"
npx jest --ci --runInBand --selectProjects integration e2e faults --json --outputFile "$results/stack.json" || status=1

# One plain closing line over both runs.
node -e '
  const fs = require("fs");
  let passed = 0, failed = 0;
  for (const f of process.argv.slice(1)) {
    if (!fs.existsSync(f)) { failed++; continue; }
    const r = JSON.parse(fs.readFileSync(f, "utf8"));
    passed += r.numPassedTests; failed += r.numFailedTests + r.numRuntimeErrorTestSuites;
  }
  console.log(`${passed} passed, ${failed} failed`);
' "$results/fast.json" "$results/stack.json"
exit $status
