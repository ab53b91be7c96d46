import type { ClickHouseClient } from '@clickhouse/client';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { z } from 'zod';
import type { DatabasePool } from 'slonik';
import { accountSharing, premiumUsersIn } from '../queries/analytics-postgres';
import {
  campaignAttribution,
  earlyChurn,
  rapidSkips,
  retentionCohorts,
  topCountriesByPlays,
} from '../queries/analytics';
import type { ChFragment } from '../../lib/clickhouse-sql';
import { chCount, chRows } from '../../lib/clients/clickhouse';
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
  const rows = <S extends z.ZodTypeAny>(q: ChFragment, row: S) => chRows(clickhouse, q, row);

  app.get(
    '/analytics/premium-top-countries',
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
      const countries = await rows(
        topCountriesByPlays(from),
        z.object({ country: z.string(), plays: chCount }),
      );
      const users = await premiumUsersIn(
        pool,
        countries.map((c) => c.country),
      );
      return { countries, users: [...users] };
    },
  );

  app.get(
    '/analytics/account-sharing',
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
    '/analytics/early-churn',
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
      const users = await rows(
        earlyChurn(from),
        z.object({ user_id: z.string(), total_plays: chCount, short_plays: chCount }),
      );
      return { users };
    },
  );

  app.get(
    '/analytics/bot-suspects',
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
      const plays = await rows(
        rapidSkips(request.query.userId, atOf(request.query.at)),
        z.object({ play_id: z.string(), track_id: z.string(), started_at: z.string(), listened_s: chCount }),
      );
      return { userId: request.query.userId, rapidSkips: plays.length, plays };
    },
  );

  app.get(
    '/analytics/retention-cohorts',
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
      const cells = await rows(
        retentionCohorts(from),
        z.object({ cohort_date: z.string(), activity_date: z.string(), active_users: chCount }),
      );
      return { cells };
    },
  );

  app.get(
    '/analytics/campaign-attribution',
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
      const found = await rows(
        campaignAttribution(),
        z.object({
          campaign_id: z.string(),
          artist_id: z.string(),
          track_id: z.string(),
          plays_during_campaign: chCount,
        }),
      );
      return { rows: found };
    },
  );
};
