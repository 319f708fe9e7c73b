import { describe, expect, it } from 'vitest';
import { fakeChannel } from '../../test/support/fakes/channel-context.js';
import { TenancyMismatchError } from '../common/errors.js';
import { assertClaimMatches } from './resolved-tenancy.js';

const SUBJECT = 'greentic.messaging.egress.dev.acme.default.main';
const channel = fakeChannel('webhook');
const claim = { tenant: 'acme', env: 'dev', team: 'default', channel: 'main' };

describe('assertClaimMatches: the subject is the authority on tenancy', () => {
  it('passes a message that claims the tenancy its subject names, with or without the tenancy header', () => {
    expect(() => assertClaimMatches(claim, undefined, channel, SUBJECT)).not.toThrow();
    expect(() => assertClaimMatches(claim, 'acme', channel, SUBJECT)).not.toThrow();
  });

  it.each([
    ['tenant', { ...claim, tenant: 'globex' }, 'globex/dev/default/main'],
    ['env', { ...claim, env: 'prod' }, 'acme/prod/default/main'],
    ['team', { ...claim, team: 'ops' }, 'acme/dev/ops/main'],
    ['channel', { ...claim, channel: 'other' }, 'acme/dev/default/other'],
  ])('refuses a body that names another %s, naming both sides', (_part, forged, named) => {
    const refuse = () => assertClaimMatches(forged, undefined, channel, SUBJECT);
    expect(refuse).toThrow(TenancyMismatchError);
    expect(refuse).toThrow(`message claims ${named} on subject ${SUBJECT}`);
  });

  it('refuses a tenancy header that names another tenant, as a permanent 403 carrying the subject', () => {
    let err: unknown;
    try {
      assertClaimMatches(claim, 'globex', channel, SUBJECT);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TenancyMismatchError);
    expect(err).toMatchObject({
      code: 'tenancy_mismatch',
      httpStatus: 403,
      message: `message claims acme/dev/default/main (tenancy header 'globex') on subject ${SUBJECT}`,
      details: { subject: SUBJECT, tenant: 'acme' },
    });
  });
});
