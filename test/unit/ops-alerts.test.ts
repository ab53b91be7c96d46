import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';

/**
 * docs/alerts.yml parses as Prometheus rule groups, every alert has a severity, a summary and a runbook
 * section that exists, and every metric an expression names is one Cadenza's code exports (found in the code
 * by its `name: 'cadenza_…'` declaration, histograms with their _bucket/_sum/_count series).
 */
const root = path.join(__dirname, '..', '..');
interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const rules = parse(readFileSync(path.join(root, 'docs', 'alerts.yml'), 'utf8')) as {
  groups: { name: string; rules: Rule[] }[];
};
const runbook = readFileSync(path.join(root, 'docs', 'runbook.md'), 'utf8');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    if (statSync(p).isDirectory()) return f === 'node_modules' ? [] : sources(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

/** Every metric the code declares (prom-client `name:`), with the series a histogram adds. */
function exported(): Set<string> {
  const names = new Set<string>();
  for (const dir of ['api', 'workers', 'lib', 'activities', 'sandbox'])
    for (const file of sources(path.join(root, dir))) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(
        /new (Counter|Gauge|Histogram)(?:<[^>]*>)?\(\{\s*name:\s*'(cadenza_\w+)'/g,
      )) {
        names.add(m[2] as string);
        if (m[1] === 'Histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(`${m[2]}${s}`);
      }
      // Gauges made through a helper: gauge('cadenza_…', …).
      for (const m of text.matchAll(/gauge\(\s*'(cadenza_\w+)'/g)) names.add(m[1] as string);
    }
  return names;
}

describe('docs/alerts.yml', () => {
  const all = rules.groups.flatMap((g) => g.rules);
  const metrics = exported();

  it('is a list of rule groups, each alert with an expression, a severity, a summary and a runbook', () => {
    expect(rules.groups.length).toBeGreaterThan(0);
    for (const r of all) {
      expect([r.alert, typeof r.expr, r.labels?.severity]).toEqual([
        r.alert,
        'string',
        expect.stringMatching(/^(info|warning|critical)$/),
      ]);
      expect([r.alert, r.annotations?.summary]).toEqual([r.alert, expect.any(String)]);
      if (r.for !== undefined)
        expect([r.alert, r.for]).toEqual([r.alert, expect.stringMatching(/^\d+[smh]$/)]);
    }
    expect(new Set(all.map((r) => r.alert)).size).toBe(all.length);
  });

  it('names only metrics the code exports', () => {
    expect(metrics.size).toBeGreaterThan(10);
    const named = all.flatMap((r) => [...r.expr.matchAll(/\bcadenza_\w+/g)].map((m) => [r.alert, m[0]]));
    expect(named.length).toBeGreaterThanOrEqual(all.length);
    for (const [alert, metric] of named)
      expect([alert, metric, metrics.has(metric as string)]).toEqual([alert, metric, true]);
  });

  it('covers what operators must hear about: sink lag, the outbox, settlements, GDPR deadlines, schedules', () => {
    const exprs = all.map((r) => r.expr).join('\n');
    for (const m of [
      'cadenza_sink_consumer_lag',
      'cadenza_outbox_oldest_undelivered_seconds',
      'cadenza_settlement_awaiting_approval_seconds',
      'cadenza_gdpr_open_requests',
      'cadenza_schedule_failed_runs',
      'cadenza_restore_drill_last_passed',
      'cadenza_partition_runway_days',
    ])
      expect([m, exprs.includes(m)]).toEqual([m, true]);
  });

  it('points every alert at a runbook section that exists', () => {
    const anchors = new Set(
      [...runbook.matchAll(/^#+ (.+)$/gm)].map((m) =>
        (m[1] as string)
          .toLowerCase()
          .replace(/[^\w -]/g, '')
          .replace(/ /g, '-'),
      ),
    );
    for (const r of all) {
      const link = r.annotations?.runbook ?? '';
      expect([r.alert, link]).toEqual([r.alert, expect.stringMatching(/^docs\/runbook\.md#/)]);
      expect([r.alert, anchors.has(link.split('#')[1] as string)]).toEqual([r.alert, true]);
    }
  });

  it('documents every metric it alerts on in the runbook', () => {
    for (const m of new Set(all.flatMap((r) => [...r.expr.matchAll(/\bcadenza_\w+/g)].map((x) => x[0]))))
      expect([m, runbook.includes(m.replace(/_count$/, ''))]).toEqual([m, true]);
  });
});
