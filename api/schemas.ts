import { Type, type TSchema } from '@sinclair/typebox';

/** Shared response shapes; every route's schema is its contract and its OpenAPI entry. */

export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    instance: Type.Optional(Type.String()),
    requestId: Type.Optional(Type.String()),
    errors: Type.Optional(Type.Array(Type.Object({ field: Type.String(), message: Type.String() }))),
    failure: Type.Optional(
      Type.String({ description: 'the workflow failure type behind the problem, if any' }),
    ),
  },
  { $id: 'Problem', description: 'application/problem+json (RFC 9457)' },
);

export const Started = Type.Object({
  workflowId: Type.String(),
  runId: Type.String(),
  existing: Type.Boolean({ description: 'true when the business key or Idempotency-Key already had a run' }),
  statusUrl: Type.String(),
});

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      pattern: '^[A-Za-z0-9._:-]{1,100}$',
      description: 'Maps onto the workflow ID: a repeat answers with the same run',
    }),
  ),
});

/** Error responses every authenticated route can give. */
export function withProblems<T extends Record<number, TSchema>>(ok: T) {
  const problem = Type.Ref(Problem);
  return { ...ok, 400: problem, 401: problem, 403: problem, 404: problem, 429: problem, 503: problem };
}
