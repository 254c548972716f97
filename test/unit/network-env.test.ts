import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/shared/errors';
import { proxyLine } from '../../src/shared/network';
import { bypassesProxy, readProxySettings } from '../../src/shared/network-env';

describe('NO_PROXY, as curl reads it', () => {
  const cases: [entries: string, host: string, port: number, direct: boolean][] = [
    ['*', 'logs.eu-west-1.amazonaws.com', 443, true],
    ['amazonaws.com', 'amazonaws.com', 443, true],
    ['amazonaws.com', 's3.eu-west-1.amazonaws.com', 443, true],
    ['amazonaws.com', 'notamazonaws.com', 443, false],
    ['.amazonaws.com', 's3.amazonaws.com', 443, true],
    ['.amazonaws.com', 'amazonaws.com', 443, true],
    ['*.example.com', 'gitlab.example.com', 443, true],
    ['gitlab.example.com', 'example.com', 443, false],
    ['GitLab.Example.com', 'gitlab.example.COM', 443, true],
    ['example.com.', 'www.example.com', 443, true],
    ['registry.local:5000', 'registry.local', 5000, true],
    ['registry.local:5000', 'registry.local', 443, false],
    ['10.1.2.3', '10.1.2.3', 443, true],
    ['10.1.2.3', '10.1.2.4', 443, false],
    ['10.0.0.0/8', '10.200.1.1', 443, true],
    ['10.0.0.0/8', '11.0.0.1', 443, false],
    ['169.254.169.254:80', '169.254.169.254', 80, true],
    ['::1', '[::1]', 443, true],
    ['[::1]:8080', '::1', 8080, true],
    ['fd00::/8', 'fd12::1', 443, true],
    ['10.0.0.0/8', 'fd12::1', 443, false],
    ['localhost, .internal  127.0.0.1', 'api.internal', 443, true],
    ['localhost,,127.0.0.1', 'gitlab.com', 443, false],
    ['', 'gitlab.com', 443, false],
  ];
  it.each(cases)('NO_PROXY=%j: %s:%i direct is %s', (entries, host, port, direct) => {
    expect(bypassesProxy(readProxySettings({ NO_PROXY: entries }).noProxy, host, port)).toBe(direct);
  });
});

describe('the proxy variables', () => {
  it('reads the lower-case name first, then the upper-case one, with ALL_PROXY as the fallback', () => {
    const s = readProxySettings({ https_proxy: 'http://lower:3128', HTTPS_PROXY: 'http://upper:3128', ALL_PROXY: 'http://all:8080' });
    expect(s.https?.host).toBe('lower:3128');
    expect(s.http?.host).toBe('all:8080');
    expect(readProxySettings({ HTTP_PROXY: 'http://upper:3128', no_proxy: 'a', NO_PROXY: 'b' })).toMatchObject({ http: { host: 'upper:3128' }, noProxy: ['a'] });
  });

  it('takes a proxy without a scheme as http://, as curl does', () => {
    expect(readProxySettings({ HTTPS_PROXY: 'proxy.corp:3128' }).https?.href).toBe('http://proxy.corp:3128/');
  });

  it('refuses a proxy it cannot speak or read as bad input naming the variable, never showing the value', () => {
    const error = (env: NodeJS.ProcessEnv) => {
      try {
        readProxySettings(env);
      } catch (e) {
        return e;
      }
      throw new Error('no error');
    };
    const socks = error({ HTTPS_PROXY: 'socks5://user:s3cret@proxy:1080' });
    expect(socks).toBeInstanceOf(InputError);
    expect((socks as InputError).problems).toEqual([{ input: 'HTTPS_PROXY', message: expect.stringContaining('socks5://') }]);
    const broken = error({ http_proxy: 'http://user:s3cret@[proxy:3128' }) as InputError;
    expect(broken.problems[0]?.input).toBe('http_proxy');
    expect(JSON.stringify([socks, broken].map((e) => (e as InputError).problems))).not.toContain('s3cret');
  });
});

describe('the start line', () => {
  it('names the proxy by host:port only, and what bypasses it', () => {
    const line = proxyLine(readProxySettings({ HTTPS_PROXY: 'http://svc:p%40ss@proxy.corp:3128', HTTP_PROXY: 'http://svc:p%40ss@proxy.corp:3128', NO_PROXY: '.internal,169.254.169.254' }));
    expect(line).toBe('Network: proxy proxy.corp:3128; direct to .internal, 169.254.169.254');
    expect(proxyLine(readProxySettings({ HTTPS_PROXY: 'https://proxy.corp', NO_PROXY: '*' }))).toBe('Network: proxy proxy.corp:443 for https://; direct to every host (NO_PROXY=*)');
    expect(proxyLine(readProxySettings({ HTTP_PROXY: 'http://a:8080', HTTPS_PROXY: 'http://b:8080' }))).toBe('Network: proxy b:8080 for https://, proxy a:8080 for http://; direct to none');
  });

  it('is not printed without a proxy', () => {
    expect(proxyLine(readProxySettings({ NO_PROXY: 'localhost' }))).toBeUndefined();
  });
});
