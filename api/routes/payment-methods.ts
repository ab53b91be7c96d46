import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { NotFoundError } from '../../lib/errors';
import { TEST_METHODS, type PaymentProvider } from '../../domain/billing/payments';
import { actingUser } from '../lib/acting';
import { Problem } from '../schemas';

/**
 * Payment methods: the API tokenises a method at the provider and keeps the token (never a card
 * number). A listener adds their own; service and operator tokens name the user.
 */
export interface PaymentMethodApiDeps {
  pool: DatabasePool;
  provider: PaymentProvider;
}

const uuid = { format: 'uuid' } as const;
function problems<T extends Record<number, ReturnType<typeof Type.Object>>>(ok: T) {
  const p = Type.Ref(Problem);
  return { ...ok, 400: p, 401: p, 403: p, 404: p, 429: p, 503: p };
}

export const paymentMethodRoutes: FastifyPluginAsyncTypebox<PaymentMethodApiDeps> = async (
  app,
  { pool, provider },
) => {
  async function userExists(userId: string): Promise<void> {
    const found = await pool.exists(
      sql.unsafe`SELECT 1 FROM users WHERE user_id = ${userId} AND erased_at IS NULL`,
    );
    if (!found) throw new NotFoundError(`No user ${userId}.`);
  }

  app.post(
    '/payment-methods',
    {
      config: {
        scopes: ['listener', 'service', 'operator'],
        audit: { action: 'payment_method.add', subject: () => ({ type: 'payment_method', id: 'new' }) },
      },
      schema: {
        tags: ['payment-methods'],
        summary: 'Tokenise a payment method (sandbox provider: by test-method name)',
        description: `Test methods: ${TEST_METHODS.join(', ')}. Tokens stay in Cadenza; card numbers never reach it.`,
        body: Type.Object(
          {
            testMethod: Type.Union(TEST_METHODS.map((m) => Type.Literal(m))),
            userId: Type.Optional(Type.String(uuid)),
          },
          { additionalProperties: false },
        ),
        response: problems({
          201: Type.Object({
            paymentMethodId: Type.String(uuid),
            userId: Type.String(uuid),
            provider: Type.String(),
            brand: Type.String(),
            last4: Type.String(),
            expMonth: Type.Integer(),
            expYear: Type.Integer(),
          }),
        }),
      },
    },
    async (request, reply) => {
      const userId = actingUser(request.principal, request.body.userId);
      await userExists(userId);
      const method = await provider.tokenizeTestMethod(request.body.testMethod);
      const paymentMethodId = await pool.oneFirst(sql.type(z.object({ payment_method_id: z.string() }))`
        INSERT INTO payment_methods (user_id, provider, provider_token, brand, last4, exp_month, exp_year)
        VALUES (${userId}, ${provider.name}, ${method.token}, ${method.brand}, ${method.last4},
          ${method.expMonth}, ${method.expYear})
        RETURNING payment_method_id`);
      request.auditSubject = { type: 'payment_method', id: paymentMethodId };
      request.auditDetails = { userId };
      return reply.code(201).send({
        paymentMethodId,
        userId,
        provider: provider.name,
        brand: method.brand,
        last4: method.last4,
        expMonth: method.expMonth,
        expYear: method.expYear,
      });
    },
  );
};
