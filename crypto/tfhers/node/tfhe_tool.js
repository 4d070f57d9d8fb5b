// Owner-encryption helper around node-tfhe 0.10.0 (WASM), run by crypto/tfhers/owner_encryption.py.
//
// Usage: node tfhe_tool.js <command>   with one JSON object on stdin; one JSON object on stdout.
// Every request carries `parameters` (a crypto/tfhers/parameters.py record).  Files are passed by path;
// numbers are integers; metadata is hex.  Exit 0 = ok; 3 = the dealer's list is rejected
// ({"error": reason, "detail": ...}); 4 = the caller's own input is unusable (public key, CRS, request);
// anything else = tool failure.
//
// Commands
//   keygen   {parameters, folder, seed, crs?}                         -> client_key.bin, compact_public_key.bin
//   crs      {parameters, out}                                        -> out: the proof CRS (public params)
//   encrypt  {parameters, public_key, crs?, digits, metadata, out}    -> out: a (Proven)CompactCiphertextList
//   verify   {parameters, public_key, crs, list, metadata, digits, out} -> out: Vec<FheUint2> for import_value
//   expand   {parameters, list, digits, out}                          -> same as verify for an unproven list
//
// Why the list is re-labelled before expansion: build_with_proof_packed / build_packed put two 2-bit blocks
// (one push_u4 digit) into one LWE and label the list "packed"; tfhe-rs then wants a server key to unpack
// with bootstraps.  The circuit reads the packed 4-bit value directly (concrete's tfhers to_native looks up
// the whole message+carry space), so the list is re-labelled as unpacked 1-block values before
// verify_and_expand / expand.  The proof covers only the LWE data, the public key and the metadata, none of
// the re-labelled fields.  [derived from the tfhe-rs 0.10.0 sources]
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

function refuse(kind, detail) {  // the caller's input, not the dealer's
  process.stdout.write(JSON.stringify({ error: kind, detail: String(detail) }) + '\n');
  process.exit(4);
}

function config(p) {
  const lwe = t.Shortint.new_gaussian_from_std_dev(p.lwe_noise_std);
  const glwe = t.Shortint.try_new_t_uniform(p.glwe_tuniform_bound_log2);
  const params = t.Shortint.new_parameters(p.lwe_dimension, p.glwe_dimension, p.polynomial_size, lwe, glwe,
    p.pbs_base_log, p.pbs_level, p.ks_base_log, p.ks_level, p.message_modulus, p.carry_modulus,
    p.max_noise_level, p.log2_p_fail, 64, t.ShortintEncryptionKeyChoice.Big);
  return t.TfheConfigBuilder.default().use_custom_parameters(params).build();
}

function readBytes(p) { return new Uint8Array(fs.readFileSync(p)); }

function writeBytes(p, bytes, mode) {
  const tmp = p + '.tmp';
  fs.writeFileSync(tmp, bytes, { mode: mode || 0o644 });
  fs.renameSync(tmp, p);
}

function hexBytes(h) {
  if (typeof h !== 'string' || !/^([0-9a-f]{2})*$/.test(h)) refuse('bad-request', 'metadata is not lowercase hex');
  return new Uint8Array(Buffer.from(h, 'hex'));
}

function keygen(req) {
  if (req.crs) {  // a market with proofs on: refuse a file that is not a CRS before making any key
    try { t.CompactPkePublicParams.deserialize(readBytes(req.crs)); } catch (e) { refuse('bad-crs', e); }
  }
  const t0 = Date.now();
  const ck = t.TfheClientKey.generate_with_seed(config(req.parameters), BigInt(req.seed));
  const pk = t.TfheCompactPublicKey.new(ck);
  const keys_ms = Date.now() - t0;
  const ckBytes = ck.serialize();
  writeBytes(path.join(req.folder, 'client_key.bin'), ckBytes, 0o600);
  fs.chmodSync(path.join(req.folder, 'client_key.bin'), 0o600);
  const pkBytes = pk.serialize();
  writeBytes(path.join(req.folder, 'compact_public_key.bin'), pkBytes);
  return { times: { keys_ms }, sizes: { client_key: ckBytes.length, public_key: pkBytes.length } };
}

function crs(req) {
  const t0 = Date.now(), c0 = process.cpuUsage();
  // 5 bits (message + carry) per LWE: one packed digit per LWE.
  const pp = t.CompactPkeCrs.from_config(config(req.parameters), 5 * req.parameters.proven_digit_limit).public_params();
  const bytes = pp.serialize(false);
  const ms = Date.now() - t0, cpu = process.cpuUsage(c0);
  writeBytes(req.out, bytes);
  return { ms, cpu_ms: Math.round((cpu.user + cpu.system) / 1000), bytes: bytes.length };
}

function loadPublic(req, needCrs) {
  let pk, pp;
  try { pk = t.TfheCompactPublicKey.deserialize(readBytes(req.public_key)); }
  catch (e) { refuse('bad-public-key', e); }
  if (needCrs) try { pp = t.CompactPkePublicParams.deserialize(readBytes(req.crs)); }
  catch (e) { refuse('bad-crs', e); }
  return { pk, pp };
}

function encrypt(req) {
  const { pk, pp } = loadPublic(req, req.prove);
  const md = hexBytes(req.metadata);
  for (const d of req.digits) {
    if (!Number.isInteger(d) || d < 0 || d > 15) refuse('bad-request', `digit ${d} outside [0, 16)`);
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
function layout(p) {
  const d = BigInt(p.glwe_dimension * p.polynomial_size), m = BigInt(p.message_modulus);
  return { d, lweSize: d + 1n, message: m, carry: BigInt(p.carry_modulus), packedDegree: m * m - 1n };
}

// Serialized ZK v1 proof (tfhe-zk-pok 0.10), the same for both parameter sets [measured]: ZkComputeLoad.Proof
// makes 1051 bytes, .Verify 527.  Verifiers accept only the first unless the request says otherwise (the
// benchmark): a Verify-load proof moves the prover's work onto every verifier (minutes of CPU each).
const PROOF_BYTES = 1051, VERIFY_LOAD_PROOF_BYTES = 527;

class Reader {
  constructor(bytes) { this.b = bytes; this.v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength); this.o = 0; }
  need(n, what) { if (this.o + n > this.b.length) fail('truncated', `list ends inside ${what} at byte ${this.o}`); }
  u64(what) { this.need(8, what); const x = this.v.getBigUint64(this.o, true); this.o += 8; return x; }
  u32(what) { this.need(4, what); const x = this.v.getUint32(this.o, true); this.o += 4; return x; }
}

// Parses one shortint CompactCiphertextList starting at r.o; returns {degreeOffset}.
function parseShortintList(r, digits, L) {
  const dataLen = r.u64('the LWE data length');
  if (dataLen > BigInt(r.b.length)) fail('truncated', `LWE data length ${dataLen} exceeds the list`);
  r.need(Number(dataLen) * 8, 'the LWE data'); r.o += Number(dataLen) * 8;
  const lweSize = r.u64('lwe_size');
  if (lweSize > 1n << 20n) fail('malformed', `lwe_size ${lweSize}: not a compact ciphertext list of the expected kind`);
  if (lweSize !== L.lweSize) fail('wrong-parameters', `lwe_size ${lweSize}, expected ${L.lweSize}`);
  if (dataLen !== L.d + BigInt(digits)) {
    fail('wrong-digit-count', `list holds ${dataLen - L.d} LWE bodies, expected ${digits}`);
  }
  const count = r.u64('lwe_ciphertext_count');
  if (count !== BigInt(digits)) fail('wrong-digit-count', `list holds ${count} ciphertexts, expected ${digits}`);
  const modLo = r.u64('ciphertext_modulus'), modHi = r.u64('ciphertext_modulus'), bits = r.u64('ciphertext_modulus');
  if (modLo !== 0n || modHi !== 0n || bits !== 64n) fail('wrong-parameters', 'ciphertext modulus is not native 2^64');
  const degreeOffset = r.o;
  const degree = r.u64('degree');
  if (degree !== L.packedDegree) {
    fail('wrong-block-width', `degree ${degree}: not one packed 4-bit digit per LWE (expected ${L.packedDegree})`);
  }
  const mm = r.u64('message_modulus'), cm = r.u64('carry_modulus');
  if (mm !== L.message || cm !== L.carry) {
    fail('wrong-parameters', `message/carry modulus ${mm}/${cm}, expected ${L.message}/${L.carry}`);
  }
  const kind = r.u32('expansion_kind'), order = r.u32('expansion_kind');
  if (kind !== 1 || order !== 0) fail('wrong-parameters', `expansion kind ${kind}/${order}: casting lists are not accepted`);
  r.u64('noise_level');
  return { degreeOffset };
}

// Checks the list and returns a copy re-labelled as `digits` unpacked 1-block values.
function relabel(bytes, digits, proven, L, acceptVerifyLoad) {
  const r = new Reader(bytes);
  if (proven) {
    const lists = r.u64('the proved-list count');
    // more than one only if the dealer proved more digits than the CRS holds, which open refuses anyway
    if (lists !== 1n) fail('malformed', `${lists} proved sub-lists, expected exactly 1`);
  }
  const { degreeOffset } = parseShortintList(r, digits, L);
  // The proof (proven lists) sits between the shortint list and the info vector, then comes the info
  // vector = u64 count + count * (u32 kind + u64 blocks), then an empty tag (u64 0).  A proof has one of
  // two fixed sizes (points of a fixed curve, whatever the parameters): the list's length is exact.
  const infoLen = 8 + 12 * digits, tagLen = 8;
  const sizes = proven ? [PROOF_BYTES, VERIFY_LOAD_PROOF_BYTES] : [0];
  const proofLen = bytes.length - tagLen - infoLen - r.o;
  if (proven && proofLen === VERIFY_LOAD_PROOF_BYTES && !acceptVerifyLoad) {
    fail('proof-rejected', 'a proof made with ZkComputeLoad.Verify: refused, it puts the prover\'s work on every verifier');
  }
  if (!sizes.includes(proofLen)) {
    const full = Math.max(...sizes);
    if (proofLen < full) fail('truncated', `list ends ${full - proofLen} bytes before a full ${proven ? 'proof' : 'list'}`);
    fail('malformed', proven ? `${proofLen} bytes between the ciphertexts and the value descriptions, expected a proof of ${sizes.join(' or ')}`
      : `${proofLen} unexpected bytes after the ciphertexts`);
  }
  const infoStart = r.o + proofLen;
  const tail = new Reader(bytes.subarray(infoStart));
  const infoCount = tail.u64('info');
  if (infoCount !== BigInt(digits)) fail('wrong-digit-count', `list describes ${infoCount} values, expected ${digits}`);
  for (let i = 0; i < digits; i++) {
    const k = tail.u32('info'), blocks = tail.u64('info');
    if (k !== 0 || blocks !== 2n) fail('wrong-block-width', `value ${i} is not an unsigned 4-bit digit (kind ${k}, ${blocks} blocks of 2 bits)`);
  }
  if (tail.u64('tag') !== 0n) fail('malformed', 'unexpected non-empty tag');
  const out = new Uint8Array(bytes.length);
  out.set(bytes);
  const ov = new DataView(out.buffer);
  ov.setBigUint64(degreeOffset, L.message - 1n, true);
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
  const { pk, pp } = loadPublic(req, true);
  const md = hexBytes(req.metadata);
  const raw = readBytes(req.list);
  const patched = relabel(raw, req.digits, true, layout(req.parameters), req.accept_verify_load === true);
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
  const patched = relabel(readBytes(req.list), req.digits, false, layout(req.parameters), false);
  let list;
  try { list = t.CompactCiphertextList.deserialize(patched); } catch (e) { fail('malformed', e); }
  return { bytes: writeUint2Array(list.expand(), req.digits, req.out) };
}

const commands = { keygen, crs, encrypt, verify, expand };
const cmd = commands[process.argv[2]];
if (!cmd) { process.stderr.write(`unknown command ${process.argv[2]}\n`); process.exit(2); }
const req = JSON.parse(fs.readFileSync(0, 'utf8'));
try {
  process.stdout.write(JSON.stringify(cmd(req)) + '\n');
} catch (e) {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(1);
}
