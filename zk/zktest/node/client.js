// A node-zookeeper-client ZooKeeper client for rstwatch's tests.
//
// Usage: node client.js HOST:PORT PATH
// Connects, sets an exists watch on PATH, prints "ready", then reads
// commands from stdin: "quit" closes the session normally and exits.
'use strict';
const zookeeper = require('node-zookeeper-client');
const readline = require('readline');

const [hosts, path] = process.argv.slice(2);
const client = zookeeper.createClient(hosts, { sessionTimeout: 10000 });
client.once('connected', () => {
  client.exists(path, (event) => console.log('event', String(event)), (err) => {
    if (err) {
      console.error('exists failed:', err);
      process.exit(1);
    }
    console.log('ready');
  });
});
client.connect();
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (line.trim() === 'quit') {
    client.close();
    client.once('disconnected', () => {
      console.log('closed');
      process.exit(0);
    });
  }
});
