// A store-only zip writer (no compression, CRC-32 per entry) for "build from folder", and a reader of a zip's
// central directory to check that an uploaded zip has a Dockerfile at its root. No zip64: artifacts are far
// below 4 GiB (the server accepts 512 MiB).

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE 802.3, as zip uses) of a Uint8Array. */
export function crc32(bytes) {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

const FLAG_UTF8 = 0x0800;
const MAX_ENTRY_BYTES = 0xfffffffe;

function dosDateTime(date) {
  const time = (date.getHours() << 11) | (date.getMinutes() << 5) | Math.floor(date.getSeconds() / 2);
  const day = ((Math.max(date.getFullYear(), 1980) - 1980) << 9) | ((date.getMonth() + 1) << 5) | date.getDate();
  return {time, day};
}

/**
 * A zip Blob holding ``entries`` ([{name, data: Uint8Array, mode?}]) stored uncompressed. ``mode`` (Unix
 * permission bits, e.g. 0o755) is kept in the external attributes, as Info-ZIP does.
 */
export function makeZip(entries, date = new Date()) {
  const encoder = new TextEncoder();
  const {time, day} = dosDateTime(date);
  const parts = [];
  const central = [];
  let offset = 0;
  for (const entry of entries) {
    const name = encoder.encode(entry.name);
    const data = entry.data;
    if (data.length > MAX_ENTRY_BYTES) throw new Error(`${entry.name} is too large for a zip without zip64`);
    const crc = crc32(data);
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true); // local file header
    local.setUint16(4, 20, true); // version needed: 2.0
    local.setUint16(6, FLAG_UTF8, true);
    local.setUint16(8, 0, true); // method: stored
    local.setUint16(10, time, true);
    local.setUint16(12, day, true);
    local.setUint32(14, crc, true);
    local.setUint32(18, data.length, true);
    local.setUint32(22, data.length, true);
    local.setUint16(26, name.length, true);
    local.setUint16(28, 0, true);
    parts.push(local.buffer, name, data);

    const dir = new DataView(new ArrayBuffer(46));
    dir.setUint32(0, 0x02014b50, true); // central directory header
    dir.setUint16(4, (3 << 8) | 20, true); // made by: Unix, 2.0
    dir.setUint16(6, 20, true);
    dir.setUint16(8, FLAG_UTF8, true);
    dir.setUint16(10, 0, true);
    dir.setUint16(12, time, true);
    dir.setUint16(14, day, true);
    dir.setUint32(16, crc, true);
    dir.setUint32(20, data.length, true);
    dir.setUint32(24, data.length, true);
    dir.setUint16(28, name.length, true);
    dir.setUint16(30, 0, true); // extra
    dir.setUint16(32, 0, true); // comment
    dir.setUint16(34, 0, true); // disk
    dir.setUint16(36, 0, true); // internal attributes
    dir.setUint32(38, (((entry.mode ?? 0o644) | 0o100000) << 16) >>> 0, true); // regular file + mode
    dir.setUint32(42, offset, true);
    central.push(dir.buffer, name);
    offset += 30 + name.length + data.length;
  }
  const dirSize = central.reduce((n, p) => n + p.byteLength, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true); // end of central directory
  end.setUint16(8, entries.length, true);
  end.setUint16(10, entries.length, true);
  end.setUint32(12, dirSize, true);
  end.setUint32(16, offset, true);
  return new Blob([...parts, ...central, end.buffer], {type: "application/zip"});
}

/** The entry names of a zip (from its central directory); throws if it is not a zip. */
export function zipNames(buffer) {
  const view = new DataView(buffer);
  const min = Math.max(0, buffer.byteLength - 22 - 0xffff);
  let eocd = -1;
  for (let i = buffer.byteLength - 22; i >= min; i--) {
    if (view.getUint32(i, true) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) throw new Error("not a zip file (no end of central directory)");
  const count = view.getUint16(eocd + 10, true);
  let p = view.getUint32(eocd + 16, true);
  const decoder = new TextDecoder();
  const names = [];
  for (let i = 0; i < count; i++) {
    if (p + 46 > buffer.byteLength || view.getUint32(p, true) !== 0x02014b50) {
      throw new Error("not a zip file (bad central directory)");
    }
    const nameLen = view.getUint16(p + 28, true);
    const extraLen = view.getUint16(p + 30, true);
    const commentLen = view.getUint16(p + 32, true);
    names.push(decoder.decode(new Uint8Array(buffer, p + 46, nameLen)));
    p += 46 + nameLen + extraLen + commentLen;
  }
  return names;
}

const SKIPPED_DIRS = new Set([".git", "__pycache__", ".venv"]);
/** Folders left out of a zipped folder, as `ember image build` does. */

/**
 * Zip the files of a folder input (``webkitdirectory``). Paths lose their first segment (the chosen folder's
 * name), so the folder's Dockerfile ends up at the root; .git, __pycache__ and .venv are left out.
 * Resolves to {blob, names}.
 */
export async function zipFolder(fileList) {
  const entries = [];
  for (const file of fileList) {
    const parts = (file.webkitRelativePath || file.name).split("/");
    const inner = parts.length > 1 ? parts.slice(1) : parts;
    if (inner.some((part) => SKIPPED_DIRS.has(part))) continue;
    entries.push({name: inner.join("/"), data: new Uint8Array(await file.arrayBuffer())});
  }
  entries.sort((a, b) => a.name.localeCompare(b.name));
  return {blob: makeZip(entries), names: entries.map((e) => e.name)};
}
