import type { Principal, Scope } from '../auth/scopes';
import { ForbiddenError, NotFoundError, ValidationError } from '../../lib/errors';

/**
 * The one answer to "may this caller act for this user". Listeners (and creators) act for themselves;
 * the scopes a route names (service and operator by default; compliance for GDPR) act for anyone.
 */
export const ACT_FOR_ANYONE: readonly Scope[] = ['service', 'operator'];

export const actsForAnyone = (principal: Principal, scopes: readonly Scope[] = ACT_FOR_ANYONE) =>
  principal.scopes.some((s) => scopes.includes(s));

/** The user a request acts for: the caller's own ID, or the `userId` a privileged caller names. */
export function actingUser(
  principal: Principal,
  userId: string | undefined,
  opts: { anyone?: readonly Scope[]; field?: string } = {},
): string {
  const field = opts.field ?? 'body.userId';
  if (!actsForAnyone(principal, opts.anyone)) {
    if (userId && userId !== principal.sub) throw new ForbiddenError('A listener acts only for themselves.');
    return principal.sub;
  }
  if (!userId) {
    throw new ValidationError(
      `userId is required for ${(opts.anyone ?? ACT_FOR_ANYONE).join(' and ')} tokens.`,
      [{ field, message: 'required' }],
    );
  }
  return userId;
}

/**
 * A resource belonging to `ownerId` may be seen by its owner and by the privileged scopes; to anyone else
 * it does not exist (404, so IDs cannot be probed).
 */
export function mustSee(
  principal: Principal,
  ownerId: string,
  what: string,
  anyone: readonly Scope[] = ACT_FOR_ANYONE,
): void {
  if (!actsForAnyone(principal, anyone) && ownerId !== principal.sub) throw new NotFoundError(`No ${what}.`);
}
