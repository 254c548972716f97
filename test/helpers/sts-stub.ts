import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** A minimal STS (Query protocol) endpoint on 127.0.0.1 answering AssumeRoleWithWebIdentity. */
export interface StsStub {
  url: string;
  /** Form fields of each request received. */
  requests: Record<string, string>[];
  /** When set, the next answers are this STS error instead of credentials. */
  fail: { status: number; code: string; message: string } | undefined;
  /** When set, called as each request arrives, before it is answered. */
  onRequest?: (() => void) | undefined;
  close(): Promise<void>;
}

const NS = 'https://sts.amazonaws.com/doc/2011-06-15/';

export async function startStsStub(): Promise<StsStub> {
  const stub: StsStub = { url: '', requests: [], fail: undefined, close: async () => {} };
  const server = http.createServer((req, res) => {
    stub.onRequest?.();
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const form = Object.fromEntries(new URLSearchParams(body));
      stub.requests.push(form);
      res.setHeader('content-type', 'text/xml');
      if (stub.fail) {
        res.statusCode = stub.fail.status;
        res.end(
          `<ErrorResponse xmlns="${NS}"><Error><Type>Sender</Type><Code>${stub.fail.code}</Code>` +
            `<Message>${stub.fail.message}</Message></Error><RequestId>req-1</RequestId></ErrorResponse>`,
        );
        return;
      }
      const expiration = new Date(Date.now() + Number(form.DurationSeconds ?? 3600) * 1000).toISOString();
      res.end(
        `<AssumeRoleWithWebIdentityResponse xmlns="${NS}"><AssumeRoleWithWebIdentityResult>` +
          `<SubjectFromWebIdentityToken>project_path:g/p</SubjectFromWebIdentityToken>` +
          `<AssumedRoleUser><Arn>arn:aws:sts::000000000000:assumed-role/r/${form.RoleSessionName}</Arn>` +
          `<AssumedRoleId>AROAEXAMPLE:${form.RoleSessionName}</AssumedRoleId></AssumedRoleUser>` +
          `<Credentials><AccessKeyId>ASIASTUB</AccessKeyId><SecretAccessKey>stub-secret</SecretAccessKey>` +
          `<SessionToken>stub-session</SessionToken><Expiration>${expiration}</Expiration></Credentials>` +
          `</AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata>` +
          `</AssumeRoleWithWebIdentityResponse>`,
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  stub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  stub.close = () => new Promise((resolve) => server.close(() => resolve()));
  return stub;
}
