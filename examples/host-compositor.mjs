#!/usr/bin/env node
// A host compositor in a few dozen lines, using only guestplane's public API: it shows a
// guest on every connected output with a host panel layer over it, follows hotplug, logs
// what each frame cost, and on Ctrl-C puts the screens back as it found them.
//
//   node examples/host-compositor.mjs [--vfio UUID] [--device /dev/dri/cardN] [--seconds N] [--capture FILE.png]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Backend, animate, udmabufStep, encodePng } from 'guestplane';

const { values: opt } = parseArgs({ options: { vfio: { type: 'string' }, device: { type: 'string' }, seconds: { type: 'string' }, capture: { type: 'string' } } });
const backend = Backend.open({ device: opt.device });

// The guest: a mediated device, or guest RAM exported as dma-bufs with a test animation.
let guest, animation;
if (opt.vfio) guest = backend.openVfio(opt.vfio);
else {
  guest = backend.createUdmabufGuest({ width: 800, height: 600, buffers: 3 });
  animation = animate(udmabufStep(guest), 60);
}

// The host's own layer: a small panel (any dma-buf works; here a udmabuf test pattern).
const panel = backend.createUdmabufGuest({ width: 256, height: 48, buffers: 1 });
panel.render(0, 1);
panel.flip(0, 1);

const show = (name) => {
  const out = backend.enableOutput(name);
  out.attach(guest, 'fit'); // the guest is layer 0; host layers stack below (<0) and above (>0)
  out.present([{ id: 'panel', buffer: { source: panel }, dst: { x: out.width - 272, y: out.height - 64, width: 256, height: 48 }, zIndex: 1 }]);
  let frames = 0, zeroCopy = 0;
  out.on('present', (p) => { frames++; if (p.zeroCopy) zeroCopy++; });
  out.on('error', (e) => console.error(`${name}: ${e.cause}: ${e.message}`));
  setInterval(() => { console.log(`${name}: ${frames} frames/s, ${zeroCopy} zero-copy`); frames = zeroCopy = 0; }, 1000).unref();
  return out;
};
const outputs = backend.listOutputs().filter((o) => o.connected).map((o) => show(o.name));
backend.on('output-added', (o) => outputs.push(show(o.name)));

async function quit() {
  if (opt.capture && outputs[0]) writeFileSync(opt.capture, encodePng(await outputs[0].captureNext()));
  animation?.stop();
  await backend.close(); // restores every output, then closes the device
  guest.close();
  panel.close();
  process.exit(0);
}
process.on('SIGINT', quit);
process.on('SIGTERM', quit);
if (opt.seconds) setTimeout(quit, Number(opt.seconds) * 1000);
