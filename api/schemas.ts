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
    failure: Type.Optional(Type.String({ description: 'the workflow failure type behind the problem' })),
  },
  {
    $id: 'Problem',
    description: 'application/problem+json (RFC 9457); `type` is stable, `detail` is for people',
    additionalProperties: true,
  },
);

/**
 * Dates and date-times the stores can hold: ClickHouse's DateTime ends in 2106 and the API subtracts up to
 * a year from `at`, and JavaScript has no leap second. api/plugins/openapi.ts adds these patterns to every
 * `format: date-time` / `format: date` in a route's input, so validation and the document agree.
 */
export const STORE_DATE_TIME = {
  pattern:
    '^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-](0[0-9]|1[0-4]):[0-5][0-9])$',
  description: 'RFC 3339 date-time in the years 2000–2099, seconds 00–59, upper-case T and Z',
};
export const STORE_DATE = {
  pattern: '^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$',
  description: 'RFC 3339 full-date in the years 2000–2099',
};

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
