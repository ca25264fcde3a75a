// bench_peers' Node peer: a Discord interactions endpoint shaped like Discord's example app
// (express, and discord-interactions' verifyKeyMiddleware in front of the route). The
// middleware checks the Ed25519 signature and answers PING with PONG itself; the route defers
// an APPLICATION_COMMAND (type 5) and hands it nowhere.
//
//   DISCORD_PUBLIC_KEY=<hex> node server.js <host> <port>
//
// POST / rather than the example's /interactions: every server under test is posted to at /.
import express from 'express';
import {
  InteractionResponseType,
  InteractionType,
  verifyKeyMiddleware,
} from 'discord-interactions';

const [host = '127.0.0.1', port = '3000'] = process.argv.slice(2);
const publicKey = process.env.DISCORD_PUBLIC_KEY;
if (!publicKey) {
  console.error('DISCORD_PUBLIC_KEY is not set');
  process.exit(2);
}

const app = express();

app.post('/', verifyKeyMiddleware(publicKey), (req, res) => {
  const { type } = req.body;
  if (type === InteractionType.PING) {
    return res.send({ type: InteractionResponseType.PONG });
  }
  if (type === InteractionType.APPLICATION_COMMAND) {
    return res.send({ type: InteractionResponseType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE });
  }
  return res.status(400).json({ error: 'unknown interaction type' });
});

const server = app.listen(Number(port), host, () => {
  console.log(`node peer listening on ${host}:${port}`);
});

// The bench stops its servers with SIGINT (a process group) or SIGTERM: close and leave.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
