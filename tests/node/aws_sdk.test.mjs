// End-to-end tests of gatecache's AWS-compatible admin API with the AWS SDK
// for JavaScript v3 (@aws-sdk/client-api-gateway, @aws-sdk/client-cloudfront):
// GetRestApis, GetStages, GetStage, UpdateStage, FlushStageCache,
// CreateInvalidation, GetInvalidation, ListInvalidations, signed with SigV4 by
// the SDK and authorised by the identities' IAM policies. Each call's result is
// checked, and so is its effect on the cache through the data plane (fetch():
// X-Cache-Status, and how many requests reached the origin).
//
// Contract: shared/spec/aws-wire.md, shared/spec/product.md §4–§6.
// The file starts tests/e2e/origin.py and `$GATECACHE_BIN serve -c CONFIG`
// (default build/gatecache) on free loopback ports and stops them by PID.
// Run: tests/node/run.sh  (or: node --test tests/node/*.test.mjs after npm ci in tests/node).

import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, accessSync, constants, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  APIGatewayClient, GetRestApisCommand, GetStagesCommand, GetStageCommand,
  UpdateStageCommand, FlushStageCacheCommand,
} from '@aws-sdk/client-api-gateway';
import {
  CloudFrontClient, CreateInvalidationCommand, GetInvalidationCommand,
  ListInvalidationsCommand,
} from '@aws-sdk/client-cloudfront';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
let BIN = process.env.GATECACHE_BIN || path.join(REPO, 'build', 'gatecache');
if (!path.isAbsolute(BIN)) BIN = path.join(REPO, BIN);
const ORIGIN_PY = path.join(REPO, 'tests', 'e2e', 'origin.py');

const AKID = 'AKIDEXAMPLE';
const SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const READER_AKID = 'AKIAE2EREADERJS';
const READER_SECRET = 'readerSecret/js+K7MDENGbPxRfiCY0060';
const DIST = 'petstore-prod'; // the default distribution id "{api-id}-{stage}"

const CONFIG = `
server:
  listen: "127.0.0.1:@PORT@"
  workers: 2
  admin_listen: "127.0.0.1:@ADMIN_PORT@"
  region: us-east-1
  account_id: "123456789012"
identities:
  - name: sdk
    access_key_id: ${AKID}
    secret_access_key_env: E2E_SDK_SECRET
    policy:
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Action: ["apigateway:GET", "apigateway:PATCH", "apigateway:DELETE"]
          Resource: ["arn:aws:apigateway:us-east-1::/restapis",
                     "arn:aws:apigateway:us-east-1::/restapis/*"]
        - Effect: Allow
          Action: ["cloudfront:CreateInvalidation", "cloudfront:GetInvalidation",
                   "cloudfront:ListInvalidations"]
          Resource: ["arn:aws:cloudfront::123456789012:distribution/*"]
  - name: reader
    access_key_id: ${READER_AKID}
    secret_access_key_env: E2E_READER_SECRET
    policy:
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Action: ["apigateway:GET", "cloudfront:GetInvalidation", "cloudfront:ListInvalidations"]
          Resource: ["arn:aws:apigateway:us-east-1::/restapis*",
                     "arn:aws:cloudfront::123456789012:distribution/*"]
apis:
  - id: petstore
    resources:
      /pets:
        GET:
          integration: { type: HTTP_PROXY, uri: "@ORIGIN@/pets" }
      /pets/{id}:
        GET:
          integration: { type: HTTP_PROXY, uri: "@ORIGIN@/pets/{id}" }
      /{proxy+}:
        ANY:
          integration: { type: HTTP_PROXY, uri: "@ORIGIN@/{proxy}" }
    stages:
      prod:
        cache_cluster_enabled: true
        cache_cluster_size: "0.5"
        method_settings:
          - resource_path: "/*"
            http_method: "*"
            caching_enabled: true
            cache_ttl_in_seconds: 300
            require_authorization_for_cache_control: true
            unauthorized_cache_control_header_strategy: SUCCEED_WITH_RESPONSE_HEADER
          - resource_path: "/pets"
            http_method: GET
            cache_ttl_in_seconds: 60
      dev:
        cache_cluster_enabled: false
`;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Ports handed out already: the kernel may return the same ephemeral port to
// two binds in a row once the first socket is closed.
const handedOut = new Set();

function bindZero() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function freePort() {
  for (let i = 0; i < 100; i++) {
    const port = await bindZero();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no fresh free port after 100 tries');
}

function portOpen(port) {
  return new Promise((resolve) => {
    const c = net.connect({ port, host: '127.0.0.1' });
    c.setTimeout(200);
    c.on('connect', () => { c.destroy(); resolve(true); });
    c.on('error', () => resolve(false));
    c.on('timeout', () => { c.destroy(); resolve(false); });
  });
}

function exited(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) resolve(proc.exitCode);
    else proc.once('exit', (code) => resolve(code));
  });
}

/** SIGTERM by PID, wait up to `ms`, then SIGKILL. Resolves {code, killed}. */
async function stopPid(proc, ms) {
  if (proc.exitCode !== null || proc.signalCode !== null) return { code: proc.exitCode, killed: false };
  try { process.kill(proc.pid, 'SIGTERM'); } catch { /* already gone */ }
  let timer;
  const code = await Promise.race([
    exited(proc),
    new Promise((resolve) => { timer = setTimeout(() => resolve('timeout'), ms); }),
  ]);
  clearTimeout(timer); // a pending timer would keep the test process alive
  if (code !== 'timeout') return { code, killed: false };
  try { process.kill(proc.pid, 'SIGKILL'); } catch { /* already gone */ }
  return { code: await exited(proc), killed: true };
}

// ------------------------------------------------------------------ origin

const origin = { proc: null, port: 0, url: '' };

async function startOrigin() {
  const proc = spawn('python3', [ORIGIN_PY, '--port', '0'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const line = await new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('origin did not start: ' + buf)), 10000);
    proc.stdout.on('data', (d) => {
      buf += d;
      if (buf.includes('\n')) { clearTimeout(timer); resolve(buf.split('\n')[0]); }
    });
    proc.on('exit', (c) => { clearTimeout(timer); reject(new Error('origin exited ' + c)); });
  });
  const m = /^PORT (\d+)$/.exec(line.trim());
  assert.ok(m, 'origin said ' + line);
  Object.assign(origin, { proc, port: Number(m[1]), url: 'http://127.0.0.1:' + m[1] });
}

async function originCount(p) {
  const r = await fetch(`${origin.url}/__count?path=${encodeURIComponent(p)}`);
  return (await r.json()).count;
}

// ------------------------------------------------------------------ gateway

/** Starts gatecache on CONFIG; stopped (and its exit checked) after test t. */
async function startGateway(t) {
  const port = await freePort();
  const adminPort = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'gatecache-node-'));
  const configPath = path.join(dir, 'gatecache.yaml');
  const text = CONFIG.replaceAll('@PORT@', String(port)).replaceAll('@ADMIN_PORT@', String(adminPort))
    .replaceAll('@ORIGIN@', origin.url);
  writeFileSync(configPath, text);
  const stderr = [];
  const proc = spawn(BIN, ['serve', '-c', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, E2E_SDK_SECRET: SECRET, E2E_READER_SECRET: READER_SECRET },
  });
  proc.stdout.on('data', (d) => stderr.push(d));
  proc.stderr.on('data', (d) => stderr.push(d));
  const log = () => Buffer.concat(stderr).toString();
  const deadline = Date.now() + 10000;
  while (!(await portOpen(port) && await portOpen(adminPort))) {
    if (proc.exitCode !== null) throw new Error(`gatecache exited ${proc.exitCode} at start:\n${log()}`);
    if (Date.now() > deadline) {
      await stopPid(proc, 5000);
      throw new Error('gatecache did not open its ports:\n' + log());
    }
    await sleep(20);
  }
  const endpoint = 'http://127.0.0.1:' + adminPort;
  const cfg = (akid = AKID, secret = SECRET) => ({
    endpoint, region: 'us-east-1', maxAttempts: 1,
    credentials: { accessKeyId: akid, secretAccessKey: secret },
  });
  const gw = {
    port, adminPort, configPath, proc, log,
    ag: new APIGatewayClient(cfg()),
    cf: new CloudFrontClient(cfg()),
    client(kind, akid, secret) {
      const c = kind === 'cf' ? new CloudFrontClient(cfg(akid, secret)) : new APIGatewayClient(cfg(akid, secret));
      this.extra.push(c);
      return c;
    },
    extra: [],
  };
  t.after(async () => {
    for (const c of [gw.ag, gw.cf, ...gw.extra]) c.destroy();
    const { code, killed } = await stopPid(proc, 15000);
    const out = log();
    rmSync(dir, { recursive: true, force: true });
    assert.ok(!killed, 'gatecache did not exit within 15 s of SIGTERM:\n' + out.slice(-4000));
    assert.equal(code, 0, 'gatecache exit code after SIGTERM:\n' + out.slice(-4000));
    for (const s of [SECRET, READER_SECRET]) assert.ok(!out.includes(s), 'a secret is in the gateway log');
  });
  return gw;
}

/** GET through the data plane: {status, cache (X-Cache-Status or null), n, body}. */
async function get(gw, p) {
  const r = await fetch(`http://127.0.0.1:${gw.port}${p}`);
  const body = await r.text();
  let n = null;
  try { n = JSON.parse(body).n; } catch { /* not JSON */ }
  return { status: r.status, cache: r.headers.get('x-cache-status'), age: r.headers.get('age'), n, body };
}

async function prime(gw, p) {
  const a = await get(gw, p);
  assert.deepEqual([a.status, a.cache], [200, 'MISS'], `first GET ${p}: ${JSON.stringify(a)}`);
  const b = await get(gw, p);
  assert.deepEqual([b.status, b.cache, b.body], [200, 'HIT', a.body], `second GET ${p}: ${JSON.stringify(b)}`);
  return a.body;
}

async function rejects(promise, name, status) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.name, name, `error name (message: ${e.message})`);
    if (status !== undefined) assert.equal(e.$metadata?.httpStatusCode, status, `HTTP status of ${name}`);
    return true;
  });
}

const meta = (o) => o.$metadata.httpStatusCode;

// methodSettings keys, normalised as aws-wire.md 2.2 says ("~1" -> "/", no leading "/"),
// so that "~1pets/GET" and "pets/GET" both name the /pets GET entry
const normKey = (k) => k.replaceAll('~1', '/').replaceAll('~0', '~').replace(/^\/+/, '');
const settingKeys = (st) => Object.keys(st.methodSettings ?? {}).map(normKey).sort();
function setting(st, key) {
  const found = Object.entries(st.methodSettings ?? {}).filter(([k]) => normKey(k) === key);
  assert.equal(found.length, 1, `one methodSettings entry for ${key} in ${JSON.stringify(st.methodSettings)}`);
  return found[0][1];
}

before(async () => {
  accessSync(BIN, constants.X_OK); // a missing binary fails the suite
  await startOrigin();
});

after(async () => {
  if (origin.proc) await stopPid(origin.proc, 5000);
});

beforeEach(async () => {
  await fetch(origin.url + '/__reset', { method: 'POST' });
});

// ================================================================ API Gateway

test('GetRestApis, GetStages and GetStage describe the config', async (t) => {
  const gw = await startGateway(t);
  const apis = await gw.ag.send(new GetRestApisCommand({}));
  assert.equal(meta(apis), 200);
  assert.deepEqual(apis.items.map((a) => a.id), ['petstore']);
  assert.equal(apis.position, undefined);

  const stages = await gw.ag.send(new GetStagesCommand({ restApiId: 'petstore' }));
  const byName = Object.fromEntries(stages.item.map((s) => [s.stageName, s]));
  assert.deepEqual(Object.keys(byName).sort(), ['dev', 'prod']);
  assert.equal(byName.dev.cacheClusterEnabled, false);
  assert.equal(byName.dev.cacheClusterStatus, 'NOT_AVAILABLE');

  const st = await gw.ag.send(new GetStageCommand({ restApiId: 'petstore', stageName: 'prod' }));
  assert.equal(meta(st), 200);
  assert.equal(st.stageName, 'prod');
  assert.equal(st.cacheClusterEnabled, true);
  assert.equal(st.cacheClusterSize, '0.5');
  assert.equal(st.cacheClusterStatus, 'AVAILABLE');
  assert.deepEqual(settingKeys(st), ['*/*', 'pets/GET']);
  const star = setting(st, '*/*');
  assert.equal(star.cachingEnabled, true);
  assert.equal(star.cacheTtlInSeconds, 300);
  assert.equal(star.cacheDataEncrypted, false);
  assert.equal(star.requireAuthorizationForCacheControl, true);
  assert.equal(star.unauthorizedCacheControlHeaderStrategy, 'SUCCEED_WITH_RESPONSE_HEADER');
  assert.equal(setting(st, 'pets/GET').cacheTtlInSeconds, 60);
  assert.equal(setting(st, 'pets/GET').cachingEnabled, true);
  // the key as the AWS CLI reference spells a per-method entry
  assert.deepEqual(Object.keys(st.methodSettings).sort(), ['*/*', '~1pets/GET']);
  if (st.createdDate !== undefined) assert.ok(st.createdDate instanceof Date && !isNaN(st.createdDate));

  await rejects(gw.ag.send(new GetStageCommand({ restApiId: 'petstore', stageName: 'nope' })),
    'NotFoundException', 404);
  await rejects(gw.ag.send(new GetStagesCommand({ restApiId: 'nope' })), 'NotFoundException', 404);
});

test('UpdateStage: TTL and per-method patches take effect on the data plane', async (t) => {
  const gw = await startGateway(t);
  const st = await gw.ag.send(new UpdateStageCommand({
    restApiId: 'petstore', stageName: 'prod', patchOperations: [
      { op: 'replace', path: '/*/*/caching/ttlInSeconds', value: '1' },
      { op: 'replace', path: '/~1pets/GET/caching/enabled', value: 'false' },
      { op: 'replace', path: '/*/*/caching/unauthorizedCacheControlHeaderStrategy', value: 'SUCCEED_WITHOUT_RESPONSE_HEADER' },
    ],
  }));
  assert.equal(meta(st), 200);
  assert.equal(setting(st, '*/*').cacheTtlInSeconds, 1);
  assert.equal(setting(st, '*/*').unauthorizedCacheControlHeaderStrategy, 'SUCCEED_WITHOUT_RESPONSE_HEADER');
  assert.equal(setting(st, 'pets/GET').cachingEnabled, false);
  assert.equal(setting(st, 'pets/GET').cacheTtlInSeconds, 60);
  const again = await gw.ag.send(new GetStageCommand({ restApiId: 'petstore', stageName: 'prod' }));
  assert.deepEqual(again.methodSettings, st.methodSettings);

  // "*/*" TTL 1 s: an entry expires
  const body = await prime(gw, '/prod/pets/1');
  await sleep(1500);
  const r = await get(gw, '/prod/pets/1');
  assert.equal(r.status, 200);
  assert.ok(['MISS', 'EXPIRED'].includes(r.cache), 'after the TTL: ' + JSON.stringify(r));
  assert.notEqual(r.body, body);
  assert.equal(await originCount('/pets/1'), 2);

  // /pets GET caching off: not cached, no X-Cache-Status
  const a = await get(gw, '/prod/pets');
  const b = await get(gw, '/prod/pets');
  assert.deepEqual([a.status, a.cache, b.status, b.cache], [200, null, 200, null]);
  assert.equal(await originCount('/pets'), 2);
});

test('UpdateStage: a new cacheClusterSize wipes the stage; bad patches are 400', async (t) => {
  const gw = await startGateway(t);
  const body = await prime(gw, '/prod/pets/1');
  const st = await gw.ag.send(new UpdateStageCommand({
    restApiId: 'petstore', stageName: 'prod',
    patchOperations: [{ op: 'replace', path: '/cacheClusterSize', value: '1.6' }],
  }));
  assert.equal(st.cacheClusterSize, '1.6');
  assert.ok(['CREATE_IN_PROGRESS', 'AVAILABLE'].includes(st.cacheClusterStatus), st.cacheClusterStatus);
  const r = await get(gw, '/prod/pets/1');
  assert.deepEqual([r.status, r.cache], [200, 'MISS']);
  assert.notEqual(r.body, body);
  assert.equal(await originCount('/pets/1'), 2);

  const bad = [
    [{ op: 'replace', path: '/*/*/caching/ttlInSeconds', value: '4000' }],
    [{ op: 'replace', path: '/cacheClusterSize', value: '3' }],
    [{ op: 'replace', path: '/foo', value: '1' }],
    [{ op: 'replace', path: '/*/*/caching/enabled', value: 'yes' }],
    [{ op: 'replace', path: '/*/*/caching/ttlInSeconds', value: '7' },
      { op: 'replace', path: '/cacheClusterSize', value: '2' }],
  ];
  for (const ops of bad) {
    await rejects(gw.ag.send(new UpdateStageCommand({ restApiId: 'petstore', stageName: 'prod', patchOperations: ops })),
      'BadRequestException', 400);
  }
  const now = await gw.ag.send(new GetStageCommand({ restApiId: 'petstore', stageName: 'prod' }));
  assert.equal(now.cacheClusterSize, '1.6');
  assert.equal(setting(now, '*/*').cacheTtlInSeconds, 300, 'a rejected request changed nothing');
  const h = await get(gw, '/prod/pets/1');
  assert.deepEqual([h.cache, h.body], ['HIT', r.body]);
});

test('FlushStageCache empties the stage', async (t) => {
  const gw = await startGateway(t);
  const b1 = await prime(gw, '/prod/pets/1');
  await prime(gw, '/prod/pets');
  const out = await gw.ag.send(new FlushStageCacheCommand({ restApiId: 'petstore', stageName: 'prod' }));
  assert.equal(meta(out), 202);
  const r = await get(gw, '/prod/pets/1');
  assert.deepEqual([r.status, r.cache], [200, 'MISS']);
  assert.notEqual(r.body, b1);
  assert.equal((await get(gw, '/prod/pets')).cache, 'MISS');
  assert.equal(await originCount('/pets/1'), 2);
  assert.equal(await originCount('/pets'), 2);
  await rejects(gw.ag.send(new FlushStageCacheCommand({ restApiId: 'petstore', stageName: 'nope' })),
    'NotFoundException', 404);
});

// ================================================================ CloudFront

test('CreateInvalidation, GetInvalidation, ListInvalidations', async (t) => {
  const gw = await startGateway(t);
  for (const p of ['/prod/pets/1', '/prod/pets/2', '/prod/pets', '/prod/other']) await prime(gw, p);
  const ref = 'js-' + process.pid + '-' + Date.now();
  const batch = { CallerReference: ref, Paths: { Quantity: 2, Items: ['/pets/1', '/pets/*'] } };
  const ci = await gw.cf.send(new CreateInvalidationCommand({ DistributionId: DIST, InvalidationBatch: batch }));
  assert.equal(meta(ci), 201);
  const inv = ci.Invalidation;
  assert.match(inv.Id, /^I[0-9A-Z]{5,}$/);
  assert.ok(['InProgress', 'Completed'].includes(inv.Status), inv.Status);
  assert.ok(inv.CreateTime instanceof Date && !isNaN(inv.CreateTime), String(inv.CreateTime));
  assert.deepEqual(inv.InvalidationBatch, batch);
  assert.ok(ci.Location.endsWith(`/2020-05-31/distribution/${DIST}/invalidation/${inv.Id}`), ci.Location);

  for (const p of ['/pets/1', '/pets/2']) {
    const r = await get(gw, '/prod' + p);
    assert.deepEqual([r.status, r.cache], [200, 'MISS'], p);
    assert.equal(await originCount(p), 2, p);
  }
  assert.equal((await get(gw, '/prod/pets')).cache, 'HIT');
  assert.equal((await get(gw, '/prod/other')).cache, 'HIT');

  // the same CallerReference and paths: the same invalidation, nothing new
  const dup = await gw.cf.send(new CreateInvalidationCommand({ DistributionId: DIST, InvalidationBatch: batch }));
  assert.equal(dup.Invalidation.Id, inv.Id);
  // the same CallerReference, other paths: refused
  await rejects(gw.cf.send(new CreateInvalidationCommand({
    DistributionId: DIST,
    InvalidationBatch: { CallerReference: ref, Paths: { Quantity: 1, Items: ['/other'] } },
  })), 'InvalidationBatchAlreadyExists');
  assert.equal((await get(gw, '/prod/other')).cache, 'HIT');

  let got;
  for (let i = 0; i < 20; i++) {
    got = await gw.cf.send(new GetInvalidationCommand({ DistributionId: DIST, Id: inv.Id }));
    if (got.Invalidation.Status === 'Completed') break;
    await sleep(250);
  }
  assert.equal(meta(got), 200);
  assert.equal(got.Invalidation.Status, 'Completed');
  assert.equal(got.Invalidation.Id, inv.Id);
  assert.deepEqual(got.Invalidation.InvalidationBatch, batch);

  const second = await gw.cf.send(new CreateInvalidationCommand({
    DistributionId: DIST,
    InvalidationBatch: { CallerReference: ref + '-2', Paths: { Quantity: 1, Items: ['/other'] } },
  }));
  assert.notEqual(second.Invalidation.Id, inv.Id);
  assert.equal((await get(gw, '/prod/other')).cache, 'MISS');

  // newest first, one per page
  const p1 = await gw.cf.send(new ListInvalidationsCommand({ DistributionId: DIST, MaxItems: 1 }));
  const l1 = p1.InvalidationList;
  assert.equal(l1.Quantity, 1);
  assert.equal(l1.MaxItems, 1);
  assert.equal(l1.IsTruncated, true);
  assert.equal(l1.Items[0].Id, second.Invalidation.Id);
  assert.equal(l1.NextMarker, second.Invalidation.Id);
  const p2 = await gw.cf.send(new ListInvalidationsCommand({ DistributionId: DIST, MaxItems: 1, Marker: l1.NextMarker }));
  const l2 = p2.InvalidationList;
  assert.equal(l2.Marker, l1.NextMarker);
  assert.equal(l2.IsTruncated, false);
  assert.deepEqual(l2.Items.map((i) => [i.Id, i.Status]), [[inv.Id, 'Completed']]);
  const all = (await gw.cf.send(new ListInvalidationsCommand({ DistributionId: DIST }))).InvalidationList;
  assert.deepEqual(all.Items.map((i) => i.Id), [second.Invalidation.Id, inv.Id]);
  assert.equal(all.Quantity, 2);
  assert.equal(all.IsTruncated, false);

  await rejects(gw.cf.send(new GetInvalidationCommand({ DistributionId: DIST, Id: 'I0NOSUCHINV0' })),
    'NoSuchInvalidation', 404);
  await rejects(gw.cf.send(new ListInvalidationsCommand({ DistributionId: 'nope-prod' })),
    'NoSuchDistribution', 404);
  await rejects(gw.cf.send(new CreateInvalidationCommand({
    DistributionId: DIST,
    InvalidationBatch: { CallerReference: ref + '-bad', Paths: { Quantity: 1, Items: ['pets/1'] } },
  })), 'InvalidArgument', 400);
});

// ================================================================ authentication

test('wrong secret, unknown key and missing permission are refused', async (t) => {
  const gw = await startGateway(t);
  const body = await prime(gw, '/prod/pets/1');
  const wrongAg = gw.client('ag', AKID, 'wrong/' + SECRET.slice(6));
  const wrongCf = gw.client('cf', AKID, 'wrong/' + SECRET.slice(6));
  await rejects(wrongAg.send(new GetRestApisCommand({})), 'InvalidSignatureException', 403);
  await rejects(wrongAg.send(new FlushStageCacheCommand({ restApiId: 'petstore', stageName: 'prod' })),
    'InvalidSignatureException', 403);
  await rejects(wrongCf.send(new ListInvalidationsCommand({ DistributionId: DIST })), 'SignatureDoesNotMatch', 403);
  await rejects(gw.client('ag', 'AKIAE2EUNKNOWNJS', SECRET).send(new GetRestApisCommand({})),
    'UnrecognizedClientException', 403);
  await rejects(gw.client('cf', 'AKIAE2EUNKNOWNJS', SECRET).send(new ListInvalidationsCommand({ DistributionId: DIST })),
    'InvalidClientTokenId', 403);

  const readerAg = gw.client('ag', READER_AKID, READER_SECRET);
  const readerCf = gw.client('cf', READER_AKID, READER_SECRET);
  const st = await readerAg.send(new GetStageCommand({ restApiId: 'petstore', stageName: 'prod' }));
  assert.equal(st.cacheClusterSize, '0.5');
  await rejects(readerAg.send(new UpdateStageCommand({
    restApiId: 'petstore', stageName: 'prod',
    patchOperations: [{ op: 'replace', path: '/cacheClusterSize', value: '1.6' }],
  })), 'AccessDeniedException', 403);
  await rejects(readerAg.send(new FlushStageCacheCommand({ restApiId: 'petstore', stageName: 'prod' })),
    'AccessDeniedException', 403);
  await rejects(readerCf.send(new CreateInvalidationCommand({
    DistributionId: DIST,
    InvalidationBatch: { CallerReference: 'js-denied', Paths: { Quantity: 1, Items: ['/*'] } },
  })), 'AccessDenied', 403);
  const list = await readerCf.send(new ListInvalidationsCommand({ DistributionId: DIST }));
  assert.equal(list.InvalidationList.Quantity, 0);

  const r = await get(gw, '/prod/pets/1');
  assert.deepEqual([r.cache, r.body], ['HIT', body], 'nothing was flushed or invalidated');
  assert.equal(await originCount('/pets/1'), 1);
  const again = await gw.ag.send(new GetStageCommand({ restApiId: 'petstore', stageName: 'prod' }));
  assert.equal(again.cacheClusterSize, '0.5');
});

// keep the config file untouched by live changes (they are not written back)
test('live UpdateStage changes are not written to the config file', async (t) => {
  const gw = await startGateway(t);
  const before = readFileSync(gw.configPath, 'utf8');
  await gw.ag.send(new UpdateStageCommand({
    restApiId: 'petstore', stageName: 'prod',
    patchOperations: [{ op: 'replace', path: '/*/*/caching/ttlInSeconds', value: '5' }],
  }));
  assert.equal(readFileSync(gw.configPath, 'utf8'), before);
  process.kill(gw.proc.pid, 'SIGHUP');
  await sleep(500);
  const st = await gw.ag.send(new GetStageCommand({ restApiId: 'petstore', stageName: 'prod' }));
  assert.equal(setting(st, '*/*').cacheTtlInSeconds, 300, 'SIGHUP reload restores the file\'s value');
});
