import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** An error the fake answers with, in the wire shape of the service that raised it. */
export class AwsError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
    /** Query protocol only: Sender (client fault) or Receiver (service fault). */
    readonly type: 'Sender' | 'Receiver' = status >= 500 ? 'Receiver' : 'Sender',
  ) {
    super(message);
    this.name = code;
  }
}

export type Protocol = 'json' | 'query';

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export function sendJson(res: ServerResponse, body: unknown, status = 200): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomUUID(),
  });
  res.end(text);
}

export function sendXml(res: ServerResponse, xml: string, status = 200): void {
  res.writeHead(status, {
    'content-type': 'text/xml',
    'content-length': Buffer.byteLength(xml),
    'x-amzn-requestid': randomUUID(),
  });
  res.end(xml);
}

export function sendError(res: ServerResponse, protocol: Protocol, e: AwsError): void {
  if (protocol === 'json') {
    res.setHeader('x-amzn-errortype', e.code);
    sendJson(res, { __type: e.code, message: e.message }, e.status);
    return;
  }
  sendXml(
    res,
    '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">' +
      `<Error><Type>${e.type}</Type><Code>${xmlEscape(e.code)}</Code><Message>${xmlEscape(e.message)}</Message></Error>` +
      `<RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
    e.status,
  );
}

export function xmlEscape(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Epoch seconds with milliseconds, as the JSON protocols serialise timestamps. */
export function epochSeconds(d: Date): number {
  return d.getTime() / 1000;
}
