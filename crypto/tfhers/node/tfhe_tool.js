// Owner-encryption helper around node-tfhe 0.10.0 (WASM), run by crypto/tfhers/owner_encryption.py.
//
// Usage: node tfhe_tool.js <command>   with one JSON object on stdin; one JSON object on stdout.
// Files are passed by path; numbers are integers; metadata is hex.  Exit 0 = ok, 3 = rejected input
// ({"error": kind, "detail": ...}), anything else = tool failure.
//
// Commands
//   keygen   {folder, seed, max_digits, tuniform_bound_log2, skip_crs} -> client_key.bin, compact_public_key.bin[, crs.bin]
//   encrypt  {public_key, crs, digits, metadata, out, prove}   -> out: a (Proven)CompactCiphertextList, bincode
//   verify   {public_key, crs, list, metadata, digits, out}    -> out: Vec<FheUint2> for concrete's import_value
//   expand   {list, digits, out}                               -> same as verify for an unproven packed list
//
// Why the list is re-labelled before expansion: build_with_proof_packed puts two 2-bit blocks (one
// push_u4 digit) into one LWE and labels the list "packed"; tfhe-rs then wants a server key to unpack
// with bootstraps.  The circuit reads the packed 4-bit value directly (concrete's tfhers to_native
// looks up the whole message+carry space), so the list is re-labelled as unpacked 1-block values before
// verify_and_expand.  The proof covers only the LWE data, the public key and the metadata, none of the
// re-labelled fields.  [derived from the tfhe-rs 0.10.0 sources]
'use strict';
const fs = require('fs');
const path = require('path');
const tfhePath = process.env.REPO_MARKET_NODE_TFHE;
const t = require(tfhePath);

const LIMIT = 1n << 32n;  // safe_serialize size limit for keys (bytes)

function fail(kind, detail) {
  process.stdout.write(JSON.stringify({ error: kind, detail: String(detail) }) + '\n');
  process.exit(3);
}

function parameters(boundLog2) {
  // concrete-python 2.11's TFHE-rs interoperability set, with TUniform encryption noise for the proof.
  const lwe = t.Shortint.new_gaussian_from_std_dev(1.0994794733558207e-6);
  const glwe = t.Shortint.try_new_t_uniform(boundLog2);
  return t.Shortint.new_parameters(902, 1, 4096, lwe, glwe, 15, 2, 3, 6, 4, 8, 10, -64.084, 64,
    t.ShortintEncryptionKeyChoice.Big);
}

function config(boundLog2) {
  return t.TfheConfigBuilder.default().use_custom_parameters(parameters(boundLog2)).build();
}

function readBytes(p) { return new Uint8Array(fs.readFileSync(p)); }

function writeBytes(p, bytes, mode) {
  const tmp = p + '.tmp';
  fs.writeFileSync(tmp, bytes, { mode: mode || 0o644 });
  fs.renameSync(tmp, p);
}

function hexBytes(h) {
  if (typeof h !== 'string' || !/^([0-9a-f]{2})*$/.test(h)) fail('bad-request', 'metadata is not lowercase hex');
  return new Uint8Array(Buffer.from(h, 'hex'));
}

function keygen(req) {
  const cfg = config(req.tuniform_bound_log2);
  const times = {};
  let t0 = Date.now();
  const ck = t.TfheClientKey.generate_with_seed(cfg, BigInt(req.seed));
  const pk = t.TfheCompactPublicKey.new(ck);
  times.keys_ms = Date.now() - t0;
  let ppBytes = new Uint8Array(0);
  if (!req.skip_crs) {
    t0 = Date.now();
    // 5 bits (message + carry) per LWE: one packed digit per LWE.
    const crs = t.CompactPkeCrs.from_config(cfg, 5 * req.max_digits);
    ppBytes = crs.public_params().serialize(false);
    times.crs_ms = Date.now() - t0;
  }
  const ckBytes = ck.serialize();
  writeBytes(path.join(req.folder, 'client_key.bin'), ckBytes, 0o600);
  fs.chmodSync(path.join(req.folder, 'client_key.bin'), 0o600);
  const pkBytes = pk.serialize();
  writeBytes(path.join(req.folder, 'compact_public_key.bin'), pkBytes);
  if (!req.skip_crs) writeBytes(path.join(req.folder, 'crs.bin'), ppBytes);
  return { times, sizes: { client_key: ckBytes.length, public_key: pkBytes.length, crs: ppBytes.length } };
}

function loadPublic(req, needCrs = true) {
  let pk, pp;
  try { pk = t.TfheCompactPublicKey.deserialize(readBytes(req.public_key)); }
  catch (e) { fail('bad-public-key', e); }
  if (needCrs) try { pp = t.CompactPkePublicParams.deserialize(readBytes(req.crs)); }
  catch (e) { fail('bad-crs', e); }
  return { pk, pp };
}

function encrypt(req) {
  const { pk, pp } = loadPublic(req, req.prove);
  const md = hexBytes(req.metadata);
  for (const d of req.digits) {
    if (!Number.isInteger(d) || d < 0 || d > 15) fail('bad-request', `digit ${d} outside [0, 16)`);
  }
  const t0 = Date.now(), c0 = process.cpuUsage();
  const builder = req.prove ? t.ProvenCompactCiphertextList.builder(pk) : t.CompactCiphertextList.builder(pk);
  for (const d of req.digits) builder.push_u4(d);
  const load = req.compute_load === 'verify' ? t.ZkComputeLoad.Verify : t.ZkComputeLoad.Proof;
  const list = req.prove ? builder.build_with_proof_packed(pp, md, load) : builder.build_packed();
  const bytes = list.serialize();
  const ms = Date.now() - t0, cpu = process.cpuUsage(c0);
  writeBytes(req.out, bytes);
  // CPU time: the wall time on a shared machine grows with its load, this does not
  return { ms, cpu_ms: Math.round((cpu.user + cpu.system) / 1000), bytes: bytes.length };
}

// --- layout of the bincode list (tfhe-rs 0.10.0), checked field by field -------------------------------
const LWE_SIZE = 4097n, MESSAGE_MODULUS = 4n, CARRY_MODULUS = 8n, PACKED_DEGREE = 15n;

class Reader {
  constructor(bytes) { this.b = bytes; this.v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength); this.o = 0; }
  need(n, what) { if (this.o + n > this.b.length) fail('truncated', `list ends inside ${what} at byte ${this.o}`); }
  u64(what) { this.need(8, what); const x = this.v.getBigUint64(this.o, true); this.o += 8; return x; }
  u32(what) { this.need(4, what); const x = this.v.getUint32(this.o, true); this.o += 4; return x; }
}

// Parses one shortint CompactCiphertextList starting at r.o; returns {count, degreeOffset}.
function parseShortintList(r, digits) {
  const dataLen = r.u64('the LWE data length');
  if (dataLen !== LWE_SIZE - 1n + BigInt(digits)) {
    fail('wrong-digit-count', `list holds ${dataLen - 4096n} LWE bodies, expected ${digits}`);
  }
  r.need(Number(dataLen) * 8, 'the LWE data'); r.o += Number(dataLen) * 8;
  const lweSize = r.u64('lwe_size');
  if (lweSize !== LWE_SIZE) fail('wrong-parameters', `lwe_size ${lweSize}, expected ${LWE_SIZE}`);
  const count = r.u64('lwe_ciphertext_count');
  if (count !== BigInt(digits)) fail('wrong-digit-count', `list holds ${count} ciphertexts, expected ${digits}`);
  const modLo = r.u64('ciphertext_modulus'), modHi = r.u64('ciphertext_modulus'), bits = r.u64('ciphertext_modulus');
  if (modLo !== 0n || modHi !== 0n || bits !== 64n) fail('wrong-parameters', 'ciphertext modulus is not native 2^64');
  const degreeOffset = r.o;
  const degree = r.u64('degree');
  if (degree !== PACKED_DEGREE) fail('wrong-block-width', `degree ${degree}: not one packed 4-bit digit per LWE (expected 15)`);
  const mm = r.u64('message_modulus'), cm = r.u64('carry_modulus');
  if (mm !== MESSAGE_MODULUS || cm !== CARRY_MODULUS) fail('wrong-parameters', `message/carry modulus ${mm}/${cm}, expected 4/8`);
  const kind = r.u32('expansion_kind'), order = r.u32('expansion_kind');
  if (kind !== 1 || order !== 0) fail('wrong-parameters', `expansion kind ${kind}/${order}: casting lists are not accepted`);
  r.u64('noise_level');
  return { degreeOffset };
}

// Checks the list and returns a copy re-labelled as `digits` unpacked 1-block values.
function relabel(bytes, digits, proven) {
  const r = new Reader(bytes);
  let degreeOffset, proofEnd;
  if (proven) {
    const lists = r.u64('the proved-list count');
    if (lists !== 1n) fail('wrong-digit-count', `${lists} proved sub-lists, expected exactly 1 (digits beyond the CRS capacity?)`);
  }
  ({ degreeOffset } = parseShortintList(r, digits));
  // The proof (proven lists) sits between the shortint list and the info vector; its length is read
  // from the end: info = u64 count + count * (u32 kind + u64 blocks), then an empty tag (u64 0).
  const infoLen = 8 + 12 * digits, tagLen = 8;
  const infoStart = bytes.length - tagLen - infoLen;
  if (infoStart < r.o) fail('truncated', 'no room for the value descriptions');
  const tail = new Reader(bytes.subarray(infoStart));
  const infoCount = tail.u64('info');
  if (infoCount !== BigInt(digits)) fail('wrong-digit-count', `list describes ${infoCount} values, expected ${digits}`);
  for (let i = 0; i < digits; i++) {
    const k = tail.u32('info'), blocks = tail.u64('info');
    if (k !== 0 || blocks !== 2n) fail('wrong-block-width', `value ${i} is not an unsigned 4-bit digit (kind ${k}, ${blocks} blocks of 2 bits)`);
  }
  if (tail.u64('tag') !== 0n) fail('malformed', 'unexpected non-empty tag');
  if (!proven && infoStart !== r.o) fail('malformed', `${infoStart - r.o} unexpected bytes after the ciphertexts`);
  proofEnd = infoStart;
  const out = new Uint8Array(bytes.length);
  out.set(bytes);
  const ov = new DataView(out.buffer);
  ov.setBigUint64(degreeOffset, MESSAGE_MODULUS - 1n, true);
  for (let i = 0; i < digits; i++) ov.setBigUint64(infoStart + 8 + 12 * i + 4, 1n, true);
  return out;
}

function writeUint2Array(expander, digits, outPath) {
  const parts = [];
  let total = 8;
  for (let i = 0; i < digits; i++) {
    const b = expander.get_uint2(i).serialize();
    parts.push(b); total += b.length;
  }
  const out = new Uint8Array(total);
  new DataView(out.buffer).setBigUint64(0, BigInt(digits), true);
  let p = 8;
  for (const b of parts) { out.set(b, p); p += b.length; }
  writeBytes(outPath, out);
  return out.length;
}

function verify(req) {
  const { pk, pp } = loadPublic(req);
  const md = hexBytes(req.metadata);
  const raw = readBytes(req.list);
  const patched = relabel(raw, req.digits, true);
  let list;
  try { list = t.ProvenCompactCiphertextList.deserialize(patched); } catch (e) { fail('malformed', e); }
  const t0 = Date.now(), c0 = process.cpuUsage();
  let expander;
  try { expander = list.verify_and_expand(pp, pk, md); } catch (e) { fail('proof-rejected', e); }
  const ms = Date.now() - t0, cpu = process.cpuUsage(c0);
  const bytes = writeUint2Array(expander, req.digits, req.out);
  return { ms, cpu_ms: Math.round((cpu.user + cpu.system) / 1000), bytes };
}

function expand(req) {
  const patched = relabel(readBytes(req.list), req.digits, false);
  let list;
  try { list = t.CompactCiphertextList.deserialize(patched); } catch (e) { fail('malformed', e); }
  return { bytes: writeUint2Array(list.expand(), req.digits, req.out) };
}

const commands = { keygen, encrypt, verify, expand };
const cmd = commands[process.argv[2]];
if (!cmd) { process.stderr.write(`unknown command ${process.argv[2]}\n`); process.exit(2); }
const req = JSON.parse(fs.readFileSync(0, 'utf8'));
try {
  process.stdout.write(JSON.stringify(cmd(req)) + '\n');
} catch (e) {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(1);
}
