import type { ClickHouseClient } from '@clickhouse/client';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { DatabasePool } from 'slonik';
import { accountSharing, premiumUsersIn } from '../queries/analytics-postgres';
import {
  artistDailyPlays,
  artistTotals,
  campaignAttribution,
  earlyChurn,
  rapidSkips,
  retentionCohorts,
  topCountriesByPlays,
} from '../queries/analytics';
import type { ChFragment } from '../../lib/clickhouse-sql';
import { ForbiddenError, ValidationError } from '../../lib/errors';
import { withProblems } from '../schemas';

/**
 * The business's questions (the source architecture's query proposals) over the real data: ClickHouse
 * for plays, PostgreSQL for people and subscriptions. Read-only; every client value reaches ClickHouse
 * through the one binder. `at` pins "now" so a question can be asked again with the same answer.
 */
export interface AnalyticsDeps {
  pool: DatabasePool;
  clickhouse: ClickHouseClient;
}

const DAY = 86_400_000;
const At = Type.Optional(
  Type.String({ format: 'date-time', description: 'the moment the question is asked at; default now' }),
);
const Days = (def: number, description: string) =>
  Type.Integer({ minimum: 1, maximum: 366, default: def, description });
const Uuid = Type.String({ format: 'uuid' });
const Count = Type.Integer();
const business = { scopes: ['operator' as const, 'finance' as const] };

function atOf(at: string | undefined): Date {
  return at ? new Date(at) : new Date();
}

export const analyticsRoutes: FastifyPluginAsyncTypebox<AnalyticsDeps> = async (
  app,
  { pool, clickhouse },
) => {
  const rows = async <T>(q: ChFragment) =>
    (await clickhouse.query({ query: q.text, format: 'JSONEachRow' })).json<T>();

  app.get(
    '/v1/analytics/premium-top-countries',
    {
      config: business,
      schema: {
        tags: ['analytics'],
        summary: '1A: premium listeners in the top-5 countries by plays',
        querystring: Type.Object({ days: Days(30, 'plays counted over this many days before `at`'), at: At }),
        response: withProblems({
          200: Type.Object({
            countries: Type.Array(Type.Object({ country: Type.String(), plays: Count })),
            users: Type.Array(Type.Object({ user_id: Uuid, plan: Type.String(), country: Type.String() })),
          }),
        }),
      },
    },
    async (request) => {
      const from = new Date(atOf(request.query.at).getTime() - request.query.days * DAY);
      const countries = (await rows<{ country: string; plays: string }>(topCountriesByPlays(from))).map(
        (r) => ({ country: r.country, plays: Number(r.plays) }),
      );
      const users = await premiumUsersIn(
        pool,
        countries.map((c) => c.country),
      );
      return { countries, users: [...users] };
    },
  );

  app.get(
    '/v1/analytics/account-sharing',
    {
      config: business,
      schema: {
        tags: ['analytics'],
        summary: '2A: accounts seen from at least `minCountries` countries in the 30 days before `at`',
        querystring: Type.Object({
          minCountries: Type.Integer({ minimum: 2, maximum: 50, default: 3 }),
          at: At,
        }),
        response: withProblems({
          200: Type.Object({
            users: Type.Array(Type.Object({ user_id: Uuid, unique_countries_30d: Count })),
          }),
        }),
      },
    },
    async (request) => ({
      users: [...(await accountSharing(pool, atOf(request.query.at), request.query.minCountries))],
    }),
  );

  app.get(
    '/v1/analytics/early-churn',
    {
      config: business,
      schema: {
        tags: ['analytics'],
        summary: '3A: new sign-ups with more than 5 plays, and how many were under 30 s',
        querystring: Type.Object({
          days: Days(7, 'sign-ups (and their plays) in this many days before `at`'),
          at: At,
        }),
        response: withProblems({
          200: Type.Object({
            users: Type.Array(Type.Object({ user_id: Uuid, total_plays: Count, short_plays: Count })),
          }),
        }),
      },
    },
    async (request) => {
      const from = new Date(atOf(request.query.at).getTime() - request.query.days * DAY);
      const found = await rows<{ user_id: string; total_plays: string; short_plays: string }>(
        earlyChurn(from),
      );
      return {
        users: found.map((r) => ({
          user_id: r.user_id,
          total_plays: Number(r.total_plays),
          short_plays: Number(r.short_plays),
        })),
      };
    },
  );

  app.get(
    '/v1/analytics/bot-suspects',
    {
      config: business,
      schema: {
        tags: ['analytics'],
        summary: "3B: a user's plays under 15 s in the ten minutes before `at` (rapid skips)",
        querystring: Type.Object({ userId: Uuid, at: At }),
        response: withProblems({
          200: Type.Object({
            userId: Uuid,
            rapidSkips: Count,
            plays: Type.Array(
              Type.Object({ play_id: Uuid, track_id: Uuid, started_at: Type.String(), listened_s: Count }),
            ),
          }),
        }),
      },
    },
    async (request) => {
      const found = await rows<{ play_id: string; track_id: string; started_at: string; listened_s: string }>(
        rapidSkips(request.query.userId, atOf(request.query.at)),
      );
      const plays = found.map((r) => ({ ...r, listened_s: Number(r.listened_s) }));
      return { userId: request.query.userId, rapidSkips: plays.length, plays };
    },
  );

  app.get(
    '/v1/analytics/retention-cohorts',
    {
      config: business,
      schema: {
        tags: ['analytics'],
        summary: '4A: retention by cohort (first day seen × day active → distinct users)',
        querystring: Type.Object({
          days: Days(30, 'cohorts and activity in this many days before `at`'),
          at: At,
        }),
        response: withProblems({
          200: Type.Object({
            cells: Type.Array(
              Type.Object({ cohort_date: Type.String(), activity_date: Type.String(), active_users: Count }),
            ),
          }),
        }),
      },
    },
    async (request) => {
      const from = new Date(atOf(request.query.at).getTime() - request.query.days * DAY);
      const found = await rows<{ cohort_date: string; activity_date: string; active_users: string }>(
        retentionCohorts(from),
      );
      return { cells: found.map((r) => ({ ...r, active_users: Number(r.active_users) })) };
    },
  );

  app.get(
    '/v1/analytics/campaign-attribution',
    {
      config: business,
      schema: {
        tags: ['analytics'],
        summary: '4B: plays per artist and track during each promotional campaign',
        response: withProblems({
          200: Type.Object({
            rows: Type.Array(
              Type.Object({
                campaign_id: Uuid,
                artist_id: Uuid,
                track_id: Uuid,
                plays_during_campaign: Count,
              }),
            ),
          }),
        }),
      },
    },
    async () => {
      const found = await rows<{
        campaign_id: string;
        artist_id: string;
        track_id: string;
        plays_during_campaign: string;
      }>(campaignAttribution());
      return { rows: found.map((r) => ({ ...r, plays_during_campaign: Number(r.plays_during_campaign) })) };
    },
  );

  app.get(
    '/v1/artists/:id/stats',
    {
      config: { scopes: ['creator', 'operator'] },
      schema: {
        tags: ['analytics'],
        summary:
          "Creator stats: plays per day and country, unique listeners, royalty-bearing plays (the artist's own creator token, or operator)",
        params: Type.Object({ id: Uuid }),
        querystring: Type.Object({
          from: Type.String({ format: 'date' }),
          to: Type.String({ format: 'date' }),
        }),
        response: withProblems({
          200: Type.Object({
            artistId: Uuid,
            from: Type.String(),
            to: Type.String(),
            uniqueListeners: Count,
            royaltyBearingPlays: Count,
            daily: Type.Array(Type.Object({ day: Type.String(), country: Type.String(), plays: Count })),
          }),
        }),
      },
    },
    async (request) => {
      const { id } = request.params;
      const p = request.principal;
      if (!p.scopes.includes('operator') && p.sub.toLowerCase() !== id.toLowerCase()) {
        throw new ForbiddenError("A creator token sees its own artist's stats only.");
      }
      const from = new Date(`${request.query.from}T00:00:00Z`);
      const to = new Date(`${request.query.to}T00:00:00Z`);
      if (to < from)
        throw new ValidationError('`to` is before `from`', [
          { field: 'querystring.to', message: 'must not be before from' },
        ]);
      if (to.getTime() - from.getTime() > 366 * DAY)
        throw new ValidationError('at most a year at a time', [
          { field: 'querystring.to', message: 'at most 366 days after from' },
        ]);
      const [daily, [totals]] = await Promise.all([
        rows<{ day: string; country: string; plays: string }>(artistDailyPlays(id, from, to)),
        rows<{ unique_listeners: string; royalty_bearing_plays: string }>(artistTotals(id, from, to)),
      ]);
      return {
        artistId: id,
        from: request.query.from,
        to: request.query.to,
        uniqueListeners: Number(totals?.unique_listeners ?? 0),
        royaltyBearingPlays: Number(totals?.royalty_bearing_plays ?? 0),
        daily: daily.map((r) => ({ ...r, plays: Number(r.plays) })),
      };
    },
  );
};
