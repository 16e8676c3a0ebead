#!/usr/bin/env node
// A Node client of mp-gateway, run against a sandbox gateway (`cargo run -- --sandbox`):
// lists products, creates an order, decodes the google.rpc details of two failing
// calls, and follows the order's usage alarms across a reconnect with resume_after.
//
//     node client.js [HOST:PORT]     (default: $MP_GATEWAY_ADDR, else localhost:50051)
//
// MP_GATEWAY_TOKEN, when set, is sent as `authorization: Bearer ...`;
// ALARM_TIMEOUT_SECS (default 60) bounds each wait for an alarm. The protos are
// loaded at run time from ../../proto (@grpc/proto-loader), so nothing is
// generated. Every check that fails exits 1 with the reason on stderr.
'use strict';

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const PROTO_ROOT = path.join(__dirname, '..', '..', 'proto');
const SERVICES = ['alarm_service', 'order_service', 'product_service'].map((name) =>
  path.join('linksfield', 'mp', 'v1', `${name}.proto`),
);
const UNARY_TIMEOUT_MS = 10_000;

const target = process.argv[2] || process.env.MP_GATEWAY_ADDR || 'localhost:50051';
const token = process.env.MP_GATEWAY_TOKEN || '';
const alarmTimeoutMs = Number(process.env.ALARM_TIMEOUT_SECS || 60) * 1000;

// The API: keepCase keeps the proto's snake_case field names; longs and enums
// as plain numbers and names.
const definition = protoLoader.loadSync(SERVICES, {
  includeDirs: [PROTO_ROOT],
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
});
const mp = grpc.loadPackageDefinition(definition).linksfield.mp.v1;

// google.rpc.Status and its details (BadRequest, ErrorInfo, RetryInfo, ...),
// vendored in proto/google/rpc; protobufjs knows google/protobuf/any and duration.
const rpcTypes = new protobuf.Root().loadSync(
  ['status.proto', 'error_details.proto'].map((file) => path.join(__dirname, 'proto', 'google', 'rpc', file)),
  { keepCase: true },
);
const RpcStatus = rpcTypes.lookupType('google.rpc.Status');

class CheckFailed extends Error {}

function check(condition, message) {
  if (!condition) throw new CheckFailed(message);
}

function metadata() {
  const md = new grpc.Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  return md;
}

/** A unary call as a promise, with a deadline. */
function call(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata(), { deadline: Date.now() + UNARY_TIMEOUT_MS }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

/** The google.rpc details of a failed call, decoded from its grpc-status-details-bin trailer. */
function errorDetails(error) {
  const [raw] = (error.metadata && error.metadata.get('grpc-status-details-bin')) || [];
  if (!raw) return [];
  const status = RpcStatus.decode(raw);
  return status.details.map((any) => {
    const typeName = any.type_url.slice(any.type_url.lastIndexOf('/') + 1);
    const type = rpcTypes.lookup(typeName);
    if (!(type instanceof protobuf.Type)) return { typeName, message: null };
    return { typeName, message: type.toObject(type.decode(any.value), { longs: Number, defaults: true }) };
  });
}

function codeName(code) {
  return Object.keys(grpc.status).find((name) => grpc.status[name] === code) || String(code);
}

/** A failed call's status code, message and google.rpc details, as lines. */
function describe(error) {
  if (typeof error.code !== 'number') return String(error);
  const lines = [`${codeName(error.code)}: ${error.details}`];
  for (const { typeName, message: d } of errorDetails(error)) {
    if (typeName === 'google.rpc.BadRequest') {
      for (const v of d.field_violations) lines.push(`  bad field ${v.field}: ${v.description}`);
    } else if (typeName === 'google.rpc.ErrorInfo') {
      const meta = Object.entries(d.metadata)
        .sort()
        .map(([k, v]) => `${k}=${v}`)
        .join(', ');
      lines.push(`  reason ${d.reason} (${d.domain}) ${meta}`);
    } else if (typeName === 'google.rpc.RetryInfo') {
      const delay = d.retry_delay || { seconds: 0, nanos: 0 };
      lines.push(`  retry after ${delay.seconds + delay.nanos / 1e9} s`);
    } else {
      lines.push(`  detail ${typeName}`);
    }
  }
  return lines.join('\n');
}

/** Runs a call that must fail with `code` and carry a detail that `matches`. */
async function expectError(what, promise, code, matches, wanted) {
  let error;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  check(error, `${what} succeeded; want ${codeName(code)}`);
  console.log(`${what} failed as expected: ${describe(error)}`);
  check(error.code === code, `${what}: status ${codeName(error.code)}, want ${codeName(code)}`);
  check(errorDetails(error).some(matches), `${what}: no ${wanted} in the status details`);
}

function timestamp(ts) {
  return ts ? new Date(ts.seconds * 1000 + Math.floor(ts.nanos / 1e6)).toISOString() : '-';
}

/** Opens a SubscribeAlarms stream, resolves with its first alarm and cancels the stream. */
function nextAlarm(alarms, request) {
  return new Promise((resolve, reject) => {
    const stream = alarms.SubscribeAlarms(request, metadata(), { deadline: Date.now() + alarmTimeoutMs });
    let done = false;
    const finish = (settle, value) => {
      if (done) return;
      done = true;
      settle(value);
      stream.cancel(); // as if the connection broke
    };
    stream.on('data', (response) =>
      response.alarm
        ? finish(resolve, response.alarm)
        : finish(reject, new CheckFailed('SubscribeAlarms: a response without an alarm')),
    );
    stream.on('error', (error) =>
      finish(
        reject,
        error.code === grpc.status.DEADLINE_EXCEEDED
          ? new CheckFailed(`SubscribeAlarms: no alarm within ${alarmTimeoutMs / 1000} s`)
          : error,
      ),
    );
    stream.on('end', () => finish(reject, new CheckFailed('SubscribeAlarms: the stream ended without an alarm')));
  });
}

/** Alarm ids are `<milliseconds>-<sequence>` (like Redis stream ids); true when a comes after b. */
function idAfter(a, b) {
  const parse = (id) => {
    const m = /^(\d+)-(\d+)$/.exec(id);
    return m && [BigInt(m[1]), BigInt(m[2])];
  };
  const [x, y] = [parse(a), parse(b)];
  return Boolean(x && y) && (x[0] > y[0] || (x[0] === y[0] && x[1] > y[1]));
}

function showAlarm(a) {
  console.log(
    `  alarm ${a.id}: order ${a.order_code} at ${a.used_percent}% (MP said ${JSON.stringify(a.used_rate)}), ` +
      `received ${timestamp(a.received_at)}`,
  );
}

async function createOrder(orders, productId, requestId) {
  let order;
  try {
    // A retry must reuse request_id: the gateway then returns the same order.
    order = await call(orders, 'CreateOrder', { request_id: requestId, product_id: productId, activate: true });
  } catch (error) {
    throw new CheckFailed(`CreateOrder: ${describe(error)}`);
  }
  console.log(`CreateOrder: order ${order.order_code}, ICCID ${order.iccid} (request_id ${requestId})`);
  console.log(`  activation code ${order.activation_code}`);
  check(
    order.order_code && order.activation_code.startsWith('LPA:1$'),
    `CreateOrder: want an order code and an LPA:1$ activation code, got ${JSON.stringify(order)}`,
  );
  return order;
}

async function main() {
  const credentials = grpc.credentials.createInsecure();
  const products = new mp.ProductService(target, credentials);
  const orders = new mp.OrderService(target, credentials, { channelOverride: products.getChannel() });
  const alarms = new mp.AlarmService(target, credentials, { channelOverride: products.getChannel() });
  try {
    // 1. Unary calls: the catalogue, then an order.
    let listed;
    try {
      listed = await call(products, 'ListProducts', {});
    } catch (error) {
      throw new CheckFailed(`ListProducts: ${describe(error)}`);
    }
    console.log(`ListProducts: ${listed.products.length} products`);
    for (const p of listed.products) {
      console.log(`  product ${p.product_id}: ${p.product_name} (${p.cover_country_name})`);
    }
    check(
      listed.products.some((p) => p.product_id === 5),
      'ListProducts: product 5 is not in the catalogue',
    );

    const runId = `${Date.now().toString(36)}-${process.pid}`;
    const first = await createOrder(orders, 5, `node-example-${runId}-a`);

    // 2. Failing calls and their google.rpc details.
    await expectError(
      'CreateOrder with ICCID 123',
      call(orders, 'CreateOrder', { product_id: 5, iccid: '123' }),
      grpc.status.INVALID_ARGUMENT,
      (d) => d.typeName === 'google.rpc.BadRequest' && d.message.field_violations.some((v) => v.field === 'iccid'),
      'BadRequest violation of field iccid',
    );
    await expectError(
      'CreateOrder of product 99',
      call(orders, 'CreateOrder', { product_id: 99 }),
      grpc.status.NOT_FOUND,
      (d) =>
        d.typeName === 'google.rpc.ErrorInfo' &&
        d.message.domain === 'mp.linksfield.net' &&
        d.message.reason === 'UPSTREAM_NOT_FOUND',
      'ErrorInfo{domain: mp.linksfield.net, reason: UPSTREAM_NOT_FOUND}',
    );

    // 3. Alarms, resumed after a reconnect. A second order started right after
    // the first crosses 53 % at about the same time, so there is always an
    // alarm after the first one to resume to.
    let registered;
    try {
      registered = await call(alarms, 'RegisterCallback', { reseller_code: 'SANDBOX0001' });
    } catch (error) {
      throw new CheckFailed(`RegisterCallback: ${describe(error)}`);
    }
    console.log(`RegisterCallback: MP posts alarms to ${registered.http_url}`);
    const second = await createOrder(orders, 5, `node-example-${runId}-b`);
    const orderCodes = [first.order_code, second.order_code];

    console.log(`SubscribeAlarms: waiting up to ${alarmTimeoutMs / 1000} s for an alarm of ${orderCodes.join(' or ')}`);
    const alarm = await nextAlarm(alarms, { order_codes: orderCodes });
    showAlarm(alarm);
    check(orderCodes.includes(alarm.order_code), `SubscribeAlarms: alarm of order ${alarm.order_code}, which the filter excludes`);
    check(alarm.used_percent >= 53, `SubscribeAlarms: alarm at ${alarm.used_percent}%, below MP's first threshold (53%)`);

    // The stream was cancelled above; resume after the last alarm seen.
    console.log(`SubscribeAlarms: reconnecting with resume_after ${alarm.id}`);
    const resumed = await nextAlarm(alarms, { order_codes: orderCodes, resume_after: alarm.id });
    showAlarm(resumed);
    check(idAfter(resumed.id, alarm.id), `SubscribeAlarms: resumed after ${alarm.id} but got alarm ${resumed.id}, not a later one`);
    check(
      !(resumed.order_code === alarm.order_code && resumed.used_percent === alarm.used_percent),
      `SubscribeAlarms: the resumed stream repeated the alarm of order ${alarm.order_code} at ${alarm.used_percent}%`,
    );
    console.log('SubscribeAlarms: the stream continued after the alarm it was resumed from');
    console.log('done');
  } finally {
    products.close();
  }
}

main().catch((error) => {
  console.error(`error: ${error instanceof CheckFailed ? error.message : describe(error)}`);
  process.exitCode = 1; // not process.exit(): that could cut off piped stdout
});
