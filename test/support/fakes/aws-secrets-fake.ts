import { createHash, createHmac, randomUUID } from 'node:crypto';
import { FakeServer, type FakeRequest, type FakeResponse } from './fake-server.js';

/**
 * AWS Secrets Manager as its API reference documents it: the AWS JSON 1.1 protocol
 * (`POST /`, `X-Amz-Target: secretsmanager.GetSecretValue`, `Content-Type:
 * application/x-amz-json-1.1`), requests signed with Signature Version 4 (the signature is
 * recomputed here from the known secret key and refused when it does not match), errors as
 * HTTP 400 `{"__type": "...", "message": "..."}` with `x-amzn-RequestId`.
 */
export class AwsSecretsFake {
  readonly server: FakeServer;
  readonly region = 'us-east-1';
  readonly accountId = '123456789012';
  private readonly secrets = new Map<string, { value: string; versionId: string; created: number }>();
  private readonly keys = new Map<string, string>();
  /** Names whose reads are refused as if an IAM policy denied them. */
  readonly denied = new Set<string>();

  constructor() {
    this.server = new FakeServer((r) => this.handle(r));
  }

  async start(): Promise<this> {
    await this.server.listen();
    return this;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.server.port}`;
  }

  addCredentials(accessKeyId: string, secretAccessKey: string): void {
    this.keys.set(accessKeyId, secretAccessKey);
  }

  put(name: string, value: string): void {
    this.secrets.set(name, { value, versionId: randomUUID(), created: Date.now() / 1000 });
  }

  reads(name: string): number {
    return this.server.requests.filter((r) => {
      if (r.headers['x-amz-target'] !== 'secretsmanager.GetSecretValue') return false;
      try {
        return (JSON.parse(r.body.toString('utf8')) as { SecretId?: string }).SecretId === name;
      } catch {
        return false;
      }
    }).length;
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private handle(r: FakeRequest): FakeResponse {
    if (r.method !== 'POST' || r.path !== '/') return awsError(404, 'UnknownOperationException', 'not found');
    if (r.headers['content-type'] !== 'application/x-amz-json-1.1') {
      return awsError(
        400,
        'SerializationException',
        `unexpected content type ${String(r.headers['content-type'])}`,
      );
    }
    const auth = this.verifySignature(r);
    if (auth) return auth;
    const target = r.headers['x-amz-target'];
    if (target !== 'secretsmanager.GetSecretValue')
      return awsError(400, 'UnknownOperationException', `unknown operation ${String(target)}`);
    let input: { SecretId?: string; VersionStage?: string };
    try {
      input = JSON.parse(r.body.toString('utf8')) as typeof input;
    } catch {
      return awsError(400, 'SerializationException', 'body is not JSON');
    }
    if (!input.SecretId) return awsError(400, 'InvalidParameterException', 'SecretId is required');
    if (this.denied.has(input.SecretId)) {
      return awsError(
        400,
        'AccessDeniedException',
        `User: arn:aws:iam::${this.accountId}:user/runner is not authorized to perform: secretsmanager:GetSecretValue`,
      );
    }
    const s = this.secrets.get(input.SecretId);
    if (!s || (input.VersionStage && input.VersionStage !== 'AWSCURRENT')) {
      return awsError(400, 'ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
    }
    return {
      status: 200,
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-RequestId': randomUUID() },
      body: {
        ARN: `arn:aws:secretsmanager:${this.region}:${this.accountId}:secret:${input.SecretId}-AbCdEf`,
        Name: input.SecretId,
        VersionId: s.versionId,
        SecretString: s.value,
        VersionStages: ['AWSCURRENT'],
        CreatedDate: s.created,
      },
    };
  }

  /** SigV4 as documented: canonical request → string to sign → HMAC chain. Answers an error or null. */
  private verifySignature(r: FakeRequest): FakeResponse | null {
    const header = r.headers['authorization'];
    const m =
      typeof header === 'string'
        ? /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
            header,
          )
        : null;
    if (!m)
      return awsError(
        400,
        'IncompleteSignatureException',
        'Authorization header requires a valid AWS4-HMAC-SHA256 signature',
      );
    const [, accessKeyId, date, region, service, signedHeaders, signature] = m as unknown as string[];
    const secret = this.keys.get(accessKeyId!);
    if (!secret)
      return awsError(
        400,
        'UnrecognizedClientException',
        'The security token included in the request is invalid.',
      );
    if (service !== 'secretsmanager')
      return awsError(400, 'InvalidSignatureException', `credential scope names service '${service}'`);
    const amzDate = String(r.headers['x-amz-date'] ?? '');
    const canonicalHeaders = signedHeaders!
      .split(';')
      .map(
        (h) =>
          `${h}:${String(r.headers[h] ?? '')
            .trim()
            .replace(/\s+/g, ' ')}\n`,
      )
      .join('');
    const payloadHash = createHash('sha256').update(r.body).digest('hex');
    const canonicalRequest = [r.method, '/', '', canonicalHeaders, signedHeaders, payloadHash].join('\n');
    const scope = `${date}/${region}/${service}/aws4_request`;
    const stringToSign = [
      'AWS4-HMAC-SHA256',
      amzDate,
      scope,
      createHash('sha256').update(canonicalRequest).digest('hex'),
    ].join('\n');
    let key: Buffer = createHmac('sha256', `AWS4${secret}`).update(date!).digest();
    for (const part of [region!, service!, 'aws4_request'])
      key = createHmac('sha256', key).update(part).digest();
    const expected = createHmac('sha256', key).update(stringToSign).digest('hex');
    if (expected !== signature) {
      return awsError(
        400,
        'InvalidSignatureException',
        'The request signature we calculated does not match the signature you provided.',
      );
    }
    return null;
  }
}

function awsError(status: number, type: string, message: string): FakeResponse {
  return {
    status,
    headers: {
      'content-type': 'application/x-amz-json-1.1',
      'x-amzn-RequestId': randomUUID(),
      'x-amzn-ErrorType': `${type}:`,
    },
    body: { __type: type, message },
  };
}
