// device/card.ts, the one place cards are listed and opened. This machine has no /dev/dri:
// what is checked here is what a user is told when no card fits and how a card is chosen;
// the rig opens real cards through it in every integration file (Backend, heads,
// compositor, and through seatd in seat.test.ts).
import { describe, it, expect } from 'vitest';
import { existsSync } from 'node:fs';
import { Card, cardNodes, hasConnectedDisplay, hasConnector } from '../../plugin/device/card.js';
import type { KmsDevice } from '../../plugin/kms/device.js';

/** The parts of a device the predicates read (a card's connectors; the rig has real ones). */
function deviceWith(connectors: { name: string; connection: string; writeback?: boolean }[]): KmsDevice {
  return { driver: { name: 'fake' }, connectors: connectors.map((c) => ({ writeback: false, ...c })) } as unknown as KmsDevice;
}

describe('cards', () => {
  it.skipIf(existsSync('/dev/dri'))('no card: the error says none was found and how to name one', () => {
    expect(cardNodes()).toEqual([]);
    expect(() => Card.open()).toThrow(/no KMS card with atomic modesetting could be opened: no \/dev\/dri\/card\* nodes; pass the card node/);
    expect(() => Card.open({ want: hasConnector(['HDMI-A-1']) })).toThrow(/no KMS card with any of the connectors HDMI-A-1 could be opened/);
  });

  it('a named card that is not there: its own error, with the path and the fix', () => {
    expect(() => Card.open({ path: '/dev/dri/card97' })).toThrow(/^\/dev\/dri\/card97 does not exist; list the KMS devices with 'ls \/dev\/dri'/);
  });

  it('chooses by connector name or by a connected display, and says why a card was passed over', () => {
    const dev = deviceWith([
      { name: 'Virtual-1', connection: 'disconnected' },
      { name: 'Writeback-1', connection: 'unknown', writeback: true },
    ]);
    expect(hasConnector(['Virtual-1']).test(dev)).toBeNull();
    expect(hasConnector(['HDMI-A-1', 'DP-1']).test(dev)).toBe('fake: Virtual-1');
    expect(hasConnector(['Writeback-1']).test(dev)).toBe('fake: Virtual-1');
    expect(hasConnectedDisplay.test(dev)).toBe('nothing connected');
    expect(hasConnectedDisplay.test(deviceWith([{ name: 'Virtual-1', connection: 'connected' }]))).toBeNull();
  });
});
