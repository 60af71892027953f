// The official `openai` npm client against a running `grpo serve`: the model list, a chat answer and
// a completion, a streamed chat answer equal to the whole one, and an error surfacing as APIError with
// its status. Usage: node openai_npm_client.cjs BASE_URL API_KEY (NODE_PATH pointing at node_modules).
const OpenAI = require("openai");
const assert = require("assert");

async function main() {
  const [baseURL, apiKey] = process.argv.slice(2);
  const client = new OpenAI({ baseURL, apiKey, timeout: 30000, maxRetries: 0 });

  const models = await client.models.list();
  assert.deepStrictEqual(models.data.map((m) => m.id), ["tiny"]);

  const request = { model: "tiny", messages: [{ role: "user", content: "hello" }], seed: 9, max_tokens: 30, n: 2 };
  const whole = await client.chat.completions.create(request);
  assert.strictEqual(whole.object, "chat.completion");
  assert.strictEqual(whole.choices.length, 2);
  assert.ok(whole.usage.completion_tokens > 0);

  const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
  const content = ["", ""], reasoning = ["", ""];
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      content[choice.index] += choice.delta.content || "";
      reasoning[choice.index] += choice.delta.reasoning_content || "";
    }
  }
  for (const choice of whole.choices) {
    assert.strictEqual(content[choice.index], choice.message.content);
    assert.strictEqual(reasoning[choice.index], choice.message.reasoning_content || "");
  }
  assert.deepStrictEqual(usage, whole.usage);

  const completion = await client.completions.create({ model: "tiny", prompt: "abc", max_tokens: 8, seed: 1, logprobs: 2 });
  assert.strictEqual(completion.object, "text_completion");
  assert.strictEqual(completion.choices[0].logprobs.tokens.length, completion.usage.completion_tokens);

  try {
    await client.chat.completions.create({ ...request, temperature: 7 });
    assert.fail("temperature 7 was accepted");
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIError, String(e));
    assert.strictEqual(e.status, 400);
    assert.strictEqual(e.param, "temperature");
  }
  console.log("openai npm client: ok");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
