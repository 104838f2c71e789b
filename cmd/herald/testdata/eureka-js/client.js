// Registers, fetches and deregisters one instance with eureka-js-client, the Node.js Eureka
// client, against the server URL given as the first argument (user:password@ for Basic
// credentials); the second argument, when given, is a CA file to trust for HTTPS.
'use strict';
const fs = require('fs');
const { Eureka } = require('eureka-js-client');

const [base, caFile] = process.argv.slice(2);
const ca = caFile ? fs.readFileSync(caFile) : undefined;
const quiet = () => {};
const client = new Eureka({
  instance: {
    app: 'ORDERS-JS',
    instanceId: 'js-1',
    hostName: 'js-host',
    ipAddr: '10.0.0.9',
    statusPageUrl: 'http://js-host:8080/info',
    port: { $: 8080, '@enabled': true },
    vipAddress: 'orders-js',
    dataCenterInfo: { '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo', name: 'MyOwn' },
  },
  eureka: {
    serviceUrls: { default: [base] },
    maxRetries: 0,
    registryFetchInterval: 500,
    heartbeatInterval: 1000,
  },
  requestMiddleware: (opts, done) => { if (ca) { opts.ca = ca; } done(opts); },
  logger: { debug: quiet, info: quiet, warn: quiet, error: (...a) => console.error(...a) },
});

const fail = (what, err) => { console.error(what + ':', err && err.message ? err.message : err); process.exit(1); };
const timer = setTimeout(() => fail('timeout', 'no result in 20 s'), 20000);

client.start((err) => {
  if (err) { fail('register', err); }
  const deadline = Date.now() + 15000;
  const poll = () => {
    client.fetchRegistry((ferr) => {
      const found = !ferr && client.getInstancesByAppId('ORDERS-JS').some((i) => i.instanceId === 'js-1');
      if (found) {
        client.stop((serr) => {
          if (serr) { fail('deregister', serr); }
          clearTimeout(timer);
          console.log('registered, fetched and deregistered js-1');
          process.exit(0);
        });
      } else if (Date.now() > deadline) {
        fail('fetch', ferr || 'js-1 not in the fetched registry');
      } else {
        setTimeout(poll, 200);
      }
    });
  };
  poll();
});
