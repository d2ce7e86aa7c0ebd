// A named-pipe echo server in Node's own style: net.createServer().listen('\\\\.\\pipe\\NAME'),
// which libuv creates with FILE_FLAG_FIRST_PIPE_INSTANCE on the first instance and a NULL
// security descriptor. It prints nothing: under Wine 8.0 a Node whose stdout is a pipe fails
// when it first writes to it (uv_pipe_open), so readiness is the endpoint accepting a client.
// node node-pipe-echo.js NAME
const net = require('net');
const server = net.createServer((c) => {
  c.on('data', (d) => c.write(d));
  c.on('error', () => {});
});
server.on('error', () => process.exit(3));
server.listen('\\\\.\\pipe\\' + process.argv[2]);
