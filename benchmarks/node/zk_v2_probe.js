// Probe: how fast is the newest input proof node-tfhe offers? node-tfhe 1.x has the v2 ZK scheme
// ("PKE v2"), which node-tfhe 0.10 (the tfhe-rs that concrete-python 2.11 embeds) lacks. Only named parameter
// sets allow a proof in 1.x (custom ones are refused: "Zk proof of encryption is not supported"), and those
// encrypt under a dedicated 2048-dimension key whose ciphertexts need a tfhe-rs casting keyswitch: this measures
// the prover, it is not a path concrete 2.11 can import. Usage: node zk_v2_probe.js NODE_TFHE_DIR DIGITS
// Prints one JSON object. Integers only (CPU ms from process.cpuUsage, sizes in bytes).
const t = require(process.argv[2]);
const digits = parseInt(process.argv[3], 10);
const LIMIT = 1n << 34n;

function cpuMs(c0) { const c = process.cpuUsage(c0); return Math.round((c.user + c.system) / 1000); }

const block = new t.ShortintParameters(t.ShortintParametersName.PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128);
const pke = new t.ShortintCompactPublicKeyEncryptionParameters(
  t.ShortintCompactPublicKeyEncryptionParametersName.PARAM_PKE_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128);
const cfg = t.TfheConfigBuilder.with_custom_parameters(block).use_dedicated_compact_public_key_parameters(pke).build();
const out = { parameters: 'PARAM_PKE_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128 (d = 2048, TUniform 2^17, ZK v2)',
              digits, bits: 4 * digits };
const ck = t.TfheClientKey.generate_with_seed(cfg, 7n);
const pk = t.TfheCompactPublicKey.new(ck);
let c0 = process.cpuUsage();
const crs = t.CompactPkeCrs.from_config(cfg, 4 * digits);
out.crs_cpu_ms = cpuMs(c0);
out.crs_bytes = crs.safe_serialize(LIMIT).length;
const metadata = new Uint8Array([1, 2, 3]);
for (const load of ['Proof', 'Verify']) {
  const builder = t.ProvenCompactCiphertextList.builder(pk);
  for (let i = 0; i < digits; i++) builder.push_u4(i % 16);
  c0 = process.cpuUsage();
  const list = builder.build_with_proof_packed(crs, metadata, t.ZkComputeLoad[load]);
  out[`prove_cpu_ms_${load.toLowerCase()}_load`] = cpuMs(c0);
  out[`list_bytes_${load.toLowerCase()}_load`] = list.safe_serialize(LIMIT).length;
}
process.stdout.write(JSON.stringify(out) + '\n');
