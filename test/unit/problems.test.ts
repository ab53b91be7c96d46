import { ApplicationFailure } from '@temporalio/common';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { FAILURE_PROBLEMS, problemFromFailure } from '../../api/problems';
import { CadenzaError } from '../../lib/errors';
import { Failure } from '../../workflows/failures';

/** Every failure type a workflow or activity raises reaches the caller as its own problem type. */
describe('failure → problem table', () => {
  const types = Object.values(Failure);

  it('maps every failure constant, and nothing else', () => {
    expect(Object.keys(FAILURE_PROBLEMS).sort()).toEqual([...types].sort());
  });

  it.each(types)('%s becomes a 4xx/5xx problem with its own slug', (type) => {
    const refused = new WorkflowUpdateFailedError(
      'update failed',
      ApplicationFailure.create({ type, message: `because ${type}`, nonRetryable: true }),
    );
    const problem = problemFromFailure(refused);
    expect(problem).toBeInstanceOf(CadenzaError);
    const p = problem as CadenzaError;
    expect(p.status).toBe(FAILURE_PROBLEMS[type].status);
    expect(p.status).toBeGreaterThanOrEqual(400);
    expect(p.message).toBe(`because ${type}`);
    expect(p.extra).toEqual({ failure: type });
  });

  it('gives each problem type one meaning: a slug is shared only by failures with the same status', () => {
    const bySlug = new Map<string, Set<number>>();
    for (const p of Object.values(FAILURE_PROBLEMS))
      bySlug.set(p.slug, (bySlug.get(p.slug) ?? new Set()).add(p.status));
    for (const [slug, statuses] of bySlug)
      expect({ slug, statuses: statuses.size }).toEqual({ slug, statuses: 1 });
  });

  it('answers an unknown refusal with 409 and leaves other errors alone', () => {
    const unknown = new WorkflowUpdateFailedError('update failed', new Error('no type'));
    expect((problemFromFailure(unknown) as CadenzaError).status).toBe(409);
    const other = new Error('network');
    expect(problemFromFailure(other)).toBe(other);
  });
});
