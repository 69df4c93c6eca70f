/**
 * Publishes bytes the NATS client refuses to build (a header value with a lone
 * CR or LF), by speaking the protocol over a plain TCP socket: CONNECT with
 * headers, one HPUB, then PING and wait for PONG so the server has it.
 */
import net from "node:net";

export async function publishRaw(natsUrl: string, subject: string, headerLines: string[], payload: string): Promise<void> {
  const u = new URL(natsUrl);
  const sock = net.connect(Number(u.port), u.hostname);
  let got = "";
  const waitFor = (text: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (got.includes(text)) {
          sock.off("data", onData);
          resolve();
        } else if (got.includes("-ERR")) reject(new Error(`nats-server said: ${got.trim()}`));
      };
      const onData = (d: Buffer) => {
        got += d.toString("latin1");
        check();
      };
      sock.on("data", onData);
      sock.once("error", reject);
      check();
    });
  try {
    await waitFor("INFO ");
    const hdr = Buffer.from(`NATS/1.0\r\n${headerLines.map((l) => `${l}\r\n`).join("")}\r\n`, "latin1");
    const body = Buffer.from(payload, "utf8");
    sock.write(`CONNECT ${JSON.stringify({ verbose: false, pedantic: false, headers: true, no_responders: false, protocol: 1 })}\r\n`);
    sock.write(`HPUB ${subject} ${hdr.length} ${hdr.length + body.length}\r\n`);
    sock.write(Buffer.concat([hdr, body, Buffer.from("\r\n")]));
    sock.write("PING\r\n");
    await waitFor("PONG");
  } finally {
    sock.destroy();
  }
}
