import type { ClickHouseClient } from '@clickhouse/client';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { z } from 'zod';
import { chCount, chRows } from '../../lib/clients/clickhouse';
import { ForbiddenError, ValidationError } from '../../lib/errors';
import { artistDailyPlays, artistTotals } from '../queries/analytics';
import { withProblems } from '../schemas';

/** An artist's own numbers, for the creator portal: plays per day and country, listeners, royalty plays. */
const DAY = 86_400_000;
const Uuid = Type.String({ format: 'uuid' });
const Count = Type.Integer();

export const artistRoutes: FastifyPluginAsyncTypebox<{ clickhouse: ClickHouseClient }> = async (
  app,
  { clickhouse },
) => {
  app.get(
    '/artists/:id/stats',
    {
      config: { scopes: ['creator', 'operator'] },
      schema: {
        tags: ['artists'],
        summary:
          "Creator stats: plays per day and country, unique listeners, royalty-bearing plays (the artist's own creator token, or operator)",
        params: Type.Object({ id: Uuid }),
        querystring: Type.Object({
          from: Type.String({ format: 'date', description: 'first day, UTC' }),
          to: Type.String({
            format: 'date',
            description: 'last day, UTC: not before `from`, at most 366 days after it (else 400)',
          }),
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
        chRows(
          clickhouse,
          artistDailyPlays(id, from, to),
          z.object({ day: z.string(), country: z.string(), plays: chCount }),
        ),
        chRows(
          clickhouse,
          artistTotals(id, from, to),
          z.object({ unique_listeners: chCount, royalty_bearing_plays: chCount }),
        ),
      ]);
      return {
        artistId: id,
        from: request.query.from,
        to: request.query.to,
        uniqueListeners: totals?.unique_listeners ?? 0,
        royaltyBearingPlays: totals?.royalty_bearing_plays ?? 0,
        daily,
      };
    },
  );
};
