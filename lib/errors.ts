/**
 * The one error hierarchy. An API response turns a CadenzaError into application/problem+json
 * (RFC 9457) with a stable `type`; anything else becomes a 500 without internal details.
 */
export class CadenzaError extends Error {
  constructor(
    readonly slug: string,
    readonly status: number,
    readonly title: string,
    detail: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(detail);
    this.name = 'CadenzaError';
  }

  get type(): string {
    return problemType(this.slug);
  }
}

export const problemType = (slug: string) => `urn:cadenza:problem:${slug}`;

export interface FieldError {
  field: string;
  message: string;
}

export class ValidationError extends CadenzaError {
  constructor(detail: string, errors: FieldError[] = []) {
    super('validation', 400, 'Invalid request', detail, { errors });
  }
}

export class UnauthorizedError extends CadenzaError {
  constructor(detail: string) {
    super('unauthorized', 401, 'Authentication required', detail);
  }
}

export class ForbiddenError extends CadenzaError {
  constructor(detail: string) {
    super('forbidden', 403, 'Not allowed', detail);
  }
}

export class NotFoundError extends CadenzaError {
  constructor(detail: string) {
    super('not-found', 404, 'Not found', detail);
  }
}

export class UnavailableError extends CadenzaError {
  constructor(detail: string) {
    super('unavailable', 503, 'Service unavailable', detail);
  }
}

/** 429 with the seconds the caller must wait (Retry-After). */
export class TooManyRequestsError extends CadenzaError {
  constructor(
    detail: string,
    readonly retryAfterSeconds: number,
  ) {
    super('rate-limited', 429, 'Too many requests', detail);
  }
}

export class ConflictError extends CadenzaError {
  constructor(detail: string, slug = 'conflict') {
    super(slug, 409, 'Conflict', detail);
  }
}

export class PaymentDeclinedError extends CadenzaError {
  constructor(detail: string) {
    super('payment-declined', 402, 'Payment declined', detail);
  }
}
