import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { DatabasePool } from 'slonik';
import { NotFoundError } from '../../lib/errors';
import { mustSee } from '../lib/acting';
import { listenerExists, recommendationsFor } from '../queries/recommendations';
import { withProblems } from '../schemas';

const Uuid = Type.String({ format: 'uuid' });

/**
 * A listener's own resources. GET /v1/users/:id/recommendations: what the nightly recommendations job
 * computed from co-listening, read from PostgreSQL (user_recs). A listener sees their own only (another
 * listener's is a 404, so IDs cannot be probed); service and operator tokens see anyone's.
 */
export const userRoutes: FastifyPluginAsyncTypebox<{ pool: DatabasePool }> = async (app, { pool }) => {
  app.get(
    '/users/:id/recommendations',
    {
      config: { scopes: ['listener', 'service', 'operator'] },
      schema: {
        tags: ['users'],
        summary:
          "Tracks recommended to a listener from co-listening (the listener's own, or service/operator)",
        params: Type.Object({ id: Uuid }),
        response: withProblems({
          200: Type.Object({
            userId: Uuid,
            generatedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
              description: 'when the job computed the list; null before it first did for this listener',
            }),
            tracks: Type.Array(
              Type.Object({
                trackId: Uuid,
                title: Type.String(),
                artistId: Uuid,
                artist: Type.String(),
                score: Type.Integer({ description: 'listeners of your tracks who also played this one' }),
              }),
            ),
          }),
        }),
      },
    },
    async (request) => {
      const userId = request.params.id.toLowerCase();
      mustSee(request.principal, userId, 'user');
      if (!(await listenerExists(pool, userId))) throw new NotFoundError('No user.');
      const recs = await recommendationsFor(pool, userId);
      return {
        userId,
        generatedAt: recs.generatedAt,
        tracks: recs.tracks.map((r) => ({
          trackId: r.track_id,
          title: r.title,
          artistId: r.artist_id,
          artist: r.artist,
          score: r.score,
        })),
      };
    },
  );
};
