// D-Bus message headers (the specification's "Message Format"): the fixed part and the
// header fields, read with the checks of wire.ts's reader, and the one message we write
// without the general encoder (the empty method return). A peer sends the same few calls
// over and over, so the fields of each kind of call are parsed once (see headerCache).
import { DbusWireError, FIELD, MESSAGE_TYPE, WireReader, parseSignature, type DbusValue, type MessageHeader } from './wire.js';

/**
 * A method return without values or destination (peer-to-peer: QEMU's answers to every
 * listener call): its 24 bytes written directly, the same as encodeMessage would (the unit
 * tests compare them), without its two growing writers.
 */
export function encodeEmptyReturn(serial: number, replySerial: number): Buffer {
  const b = Buffer.allocUnsafe(24);
  b[0] = 0x6c; // 'l'
  b[1] = MESSAGE_TYPE.return;
  b[2] = 0;
  b[3] = 1;
  b.writeUInt32LE(0, 4); // body length
  b.writeUInt32LE(serial >>> 0, 8);
  b.writeUInt32LE(8, 12); // header fields: one, REPLY_SERIAL 'u'
  b[16] = FIELD.replySerial;
  b[17] = 1;
  b[18] = 0x75; // 'u'
  b[19] = 0;
  b.writeUInt32LE(replySerial >>> 0, 20);
  return b;
}

/** Header field codes → the MessageHeader member each fills and its type. */
const HEADER_FIELDS: Readonly<Record<number, readonly [keyof MessageHeader, string]>> = {
  [FIELD.path]: ['path', 'o'],
  [FIELD.interface]: ['interface', 's'],
  [FIELD.member]: ['member', 's'],
  [FIELD.errorName]: ['errorName', 's'],
  [FIELD.replySerial]: ['replySerial', 'u'],
  [FIELD.destination]: ['destination', 's'],
  [FIELD.sender]: ['sender', 's'],
  [FIELD.signature]: ['signature', 'g'],
  [FIELD.unixFds]: ['unixFds', 'u'],
};

type HeaderFields = Pick<MessageHeader, 'path' | 'interface' | 'member' | 'errorName' | 'replySerial' | 'destination' | 'sender' | 'signature' | 'unixFds'>;

/**
 * Header fields already parsed, by their bytes (and byte order). A peer sends the same few
 * calls over and over (QEMU: ScanoutDMABUF, UpdateDMABUF…) whose fields differ only in the
 * fixed part (the serial): one lookup instead of a dozen reads per message. Replies (a new
 * reply serial each) are not kept; at most HEADER_CACHE entries, so a peer that varies its
 * fields only fills it once.
 */
const headerCache = new Map<string, Readonly<HeaderFields>>();
const HEADER_CACHE = 64;

/** Parses a complete message's header (fields checked by type); the body is not touched. */
export function decodeHeader(b: Buffer): MessageHeader {
  const le = b[0] === 0x6c;
  if (b.length < 16) throw new DbusWireError('a header of fewer than 16 bytes');
  const bodyLength = le ? b.readUInt32LE(4) : b.readUInt32BE(4);
  const serial = le ? b.readUInt32LE(8) : b.readUInt32BE(8);
  if (serial === 0) throw new DbusWireError('serial 0');
  const fieldsLen = le ? b.readUInt32LE(12) : b.readUInt32BE(12);
  const fieldsEnd = 16 + fieldsLen;
  if (fieldsEnd > b.length) throw new DbusWireError('header fields run past the message');
  const key = fieldsLen <= 512 ? (le ? 'l' : 'B') + b.toString('latin1', 16, fieldsEnd) : null;
  let fields = key === null ? undefined : headerCache.get(key);
  if (!fields) {
    fields = parseFields(b, le, fieldsEnd);
    if (key !== null && fields.replySerial === undefined && headerCache.size < HEADER_CACHE) headerCache.set(key, fields);
  }
  const h: MessageHeader = { littleEndian: le, type: b[1]!, flags: b[2]!, serial, bodyLength, bodyOffset: fieldsEnd + ((8 - (fieldsEnd % 8)) % 8), ...fields };
  if (h.bodyOffset + bodyLength !== b.length) throw new DbusWireError('header and body lengths do not add up to the message');
  if (h.type === MESSAGE_TYPE.call && (!h.path || !h.member)) throw new DbusWireError('a method call without path or member');
  if ((h.type === MESSAGE_TYPE.return || h.type === MESSAGE_TYPE.error) && !h.replySerial) throw new DbusWireError('a reply without reply serial');
  if (h.type === MESSAGE_TYPE.error && !h.errorName) throw new DbusWireError('an error without error name');
  if (h.type < 1 || h.type > 4) throw new DbusWireError(`message type ${h.type}`);
  return h;
}

/** The header fields (from byte 16 to `fieldsEnd`), each checked by type. */
function parseFields(b: Buffer, le: boolean, fieldsEnd: number): HeaderFields {
  const h: HeaderFields = { signature: '', unixFds: 0 };
  const inFields = new WireReader(b, le, 16, fieldsEnd, [], 64);
  while (inFields.pos < fieldsEnd) {
    inFields.align(8);
    const code = inFields.u8();
    const sig = inFields.signature();
    const t = parseSignature(sig);
    if (t.length !== 1) throw new DbusWireError(`header field ${code} has signature '${sig}'`);
    const v = inFields.value(t[0]!);
    const field = HEADER_FIELDS[code];
    if (field === undefined) continue; // unknown fields are ignored, as the specification says
    if (sig !== field[1]) throw new DbusWireError(`header field ${code} has type '${sig}', expected '${field[1]}'`);
    (h as unknown as Record<string, DbusValue>)[field[0]] = v;
  }
  return h;
}

